/**
 * The stack's configuration: one schema, one validating function. `validateStackConfig` is pure
 * (tested without Pulumi); `loadStackConfig` in ./loadConfig.ts is the only place that reads
 * `pulumi.Config`. Every problem is reported at once, each naming the key, the value and what is
 * allowed, so `pulumi preview` fails before anything is created.
 */
import { maxIntervalMinutes, parseCron } from "./cron";

export const PROJECT = "krystalinex-backup";

export type Criticality = "critical" | "high" | "medium" | "low";

export interface DatabaseConfig {
    /** PostgreSQL database name; also the backup folder and part of Kubernetes names. */
    readonly name: string;
    /** Service or host name the job connects to. */
    readonly host: string;
    readonly port: number;
    readonly user: string;
    /** Backup schedule (5-field cron, UTC). */
    readonly schedule: string;
    readonly retentionDays: number;
    /** Newest complete backups that prune always keeps. */
    readonly keepMin: number;
    /** Schedule of the restore test. */
    readonly verifySchedule: string;
    /** Recovery point objective: the schedule may never leave a gap longer than this. */
    readonly rpoHours: number;
    readonly criticality: Criticality;
    /** Server major version: picks the client tools and the verify sidecar's PostgreSQL. */
    readonly postgresMajor: number;
}

export interface S3TargetConfig {
    readonly region: string;
    /** Key prefix; database folders sit under it. */
    readonly prefix: string;
    /** Object lock (WORM) default retention; the bucket is created lock-enabled when set. */
    readonly objectLock?: { readonly mode: "GOVERNANCE" | "COMPLIANCE"; readonly days: number };
    /** Cross-region replica for the region-failure scenario. */
    readonly replicaRegion?: string;
    /** Days an overwritten or deleted version is kept before it expires. */
    readonly noncurrentVersionDays: number;
    /** How the job authenticates: an IAM role through IRSA, or (dev only) static keys in a Secret. */
    readonly access: "irsa" | "static-keys";
}

export interface AzureTargetConfig {
    readonly location: string;
    readonly resourceGroup: string;
    /** Blob name prefix; database folders sit under it. */
    readonly prefix: string;
    /** Explicit account name; derived from the stack when absent. */
    readonly accountName?: string;
    readonly containerName: string;
    /** Time-based immutability (WORM) on the container, in days. */
    readonly immutabilityDays?: number;
    readonly noncurrentVersionDays: number;
    readonly softDeleteDays: number;
    /** Workload identity, or (dev only) a connection-string Secret. */
    readonly access: "workload-identity" | "connection-string";
}

export interface PvcTargetConfig {
    readonly size: string;
    readonly storageClass?: string;
}

export interface KubernetesConfig {
    readonly namespace: string;
    /** EKS OIDC provider (ARN and issuer host/path) that IRSA trusts. */
    readonly irsa?: { readonly oidcProviderArn: string; readonly oidcIssuer: string };
    /** AKS OIDC issuer URL that the Azure workload identity trusts. */
    readonly azureOidcIssuer?: string;
    /** Hosts' CIDR blocks the backup pods may reach on the database ports. */
    readonly databaseCidrs: readonly string[];
    readonly resources: {
        readonly cpuRequest: string;
        readonly memoryRequest: string;
        readonly cpuLimit: string;
        readonly memoryLimit: string;
    };
}

export interface ImageConfig {
    /** true: build jobs/ and push; false: use `ref` as is. */
    readonly build: boolean;
    /** Repository to push to when building (e.g. 123.dkr.ecr.eu-west-1.amazonaws.com/kx-backup). */
    readonly repository?: string;
    /** Tag for a built image. */
    readonly tag: string;
    /** Image reference used when not building. */
    readonly ref?: string;
    readonly platform: string;
}

export interface VolumeConfig {
    /** Archive name: the folder and file names of its archives. */
    readonly name: string;
    /** Existing PVC to archive (mounted read-only). */
    readonly pvc: string;
    /** Default: weekly, Sunday 03:00 UTC (the runbook's volume row). */
    readonly schedule: string;
    /** Default: 4 weeks. */
    readonly retentionWeeks: number;
    readonly keepMin: number;
}

export interface ConfigBackupConfig {
    /** How often the namespace's ConfigMaps and Secrets are exported; uploads happen only on change. */
    readonly schedule: string;
    /** Default: none (kept indefinitely, as the runbook says; no lifecycle rule for its prefix). */
    readonly retentionDays?: number;
}

/** Archive name of the namespace configuration export. */
export const CONFIG_ARCHIVE_NAME = "k8s-config";

export interface StackConfig {
    readonly stack: string;
    readonly namePrefix: string;
    readonly databases: readonly DatabaseConfig[];
    readonly targets: {
        readonly pvc?: PvcTargetConfig;
        readonly s3?: S3TargetConfig;
        readonly azure?: AzureTargetConfig;
    };
    readonly kubernetes: KubernetesConfig;
    readonly image: ImageConfig;
    readonly notifications: { readonly ntfy: boolean };
    readonly volumes: readonly VolumeConfig[];
    readonly configBackup?: ConfigBackupConfig;
}

/** Config as read: plain values by key, and which secret keys are present (never their values). */
export interface RawConfig {
    readonly stack: string;
    readonly values: Readonly<Record<string, unknown>>;
    /** Databases that have a password under `dbPasswords`. */
    readonly passwordsFor: readonly string[];
    readonly hasNtfyUrl: boolean;
}

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
    }
}

const TOP_KEYS = ["namePrefix", "databases", "dbPasswords", "targets", "kubernetes", "image", "notifications", "ntfyUrl", "volumes", "configBackup"];

/** A value reader that records problems with the config key they belong to. */
class Reader {
    readonly problems: string[] = [];

    fail(key: string, value: unknown, allowed: string): undefined {
        this.problems.push(`${PROJECT}:${key}: got ${show(value)}; allowed: ${allowed}`);
        return undefined;
    }

    object(key: string, v: unknown, known: string[]): Record<string, unknown> | undefined {
        if (typeof v !== "object" || v === null || Array.isArray(v)) {
            return this.fail(key, v, "an object");
        }
        for (const k of Object.keys(v)) {
            if (!known.includes(k)) {
                this.fail(`${key}.${k}`, (v as Record<string, unknown>)[k], `no such key (known: ${known.join(", ")})`);
            }
        }
        return v as Record<string, unknown>;
    }

    string(key: string, v: unknown, pattern?: RegExp, allowed = "a string"): string | undefined {
        if (typeof v !== "string" || v === "" || (pattern && !pattern.test(v))) {
            return this.fail(key, v, allowed);
        }
        return v;
    }

    int(key: string, v: unknown, min: number, max: number, what: string): number | undefined {
        if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
            return this.fail(key, v, `${what}: a whole number from ${min} to ${max}`);
        }
        return v;
    }

    bool(key: string, v: unknown): boolean | undefined {
        if (typeof v !== "boolean") {
            return this.fail(key, v, "true or false");
        }
        return v;
    }

    oneOf<T extends string>(key: string, v: unknown, values: readonly T[]): T | undefined {
        if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
            return this.fail(key, v, values.join(" | "));
        }
        return v as T;
    }

    cron(key: string, v: unknown): string | undefined {
        if (typeof v !== "string") {
            return this.fail(key, v, "a 5-field cron expression such as \"0 */6 * * *\"");
        }
        try {
            parseCron(v);
            return v;
        } catch (e) {
            return this.fail(key, v, `a 5-field cron expression Kubernetes accepts (${(e as Error).message})`);
        }
    }
}

function show(v: unknown): string {
    return v === undefined ? "nothing" : JSON.stringify(v);
}

const DB_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUANTITY = /^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const AWS_REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;
const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;

/** A database name as it appears in Kubernetes names: `crypto_exchange` → `crypto-exchange`. */
export function kubeName(database: string): string {
    return database.replace(/_/g, "-");
}

/** CronJob names are limited to 52 characters (the controller appends an 11-character suffix). */
export const CRONJOB_NAME_MAX = 52;

export function cronJobName(namePrefix: string, database: string, kind: "backup" | "verify" | "archive"): string {
    return `${namePrefix}-${kind}-${kubeName(database)}`;
}

/** S3 bucket naming rules (3–63, lowercase letters, digits, hyphens; no IP form, no reserved prefixes). */
export function bucketNameProblem(name: string): string | undefined {
    if (name.length < 3 || name.length > 63) {
        return "3 to 63 characters";
    }
    if (!/^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(name)) {
        return "lowercase letters, digits and hyphens, starting and ending with a letter or digit";
    }
    if (/^xn--|^sthree-|^amzn-s3-demo-|-s3alias$|--ol-s3$|--x-s3$/.test(name)) {
        return "no reserved prefix or suffix (xn--, sthree-, -s3alias, --ol-s3, --x-s3)";
    }
    return undefined;
}

/** Pulumi appends an 8-character random suffix ("-" + 7) to auto-named buckets. */
export function bucketBaseName(namePrefix: string, stack: string): string {
    return `${namePrefix}-${stack}`;
}

/**
 * A storage account name that is valid (3–24 lowercase letters and digits), stable across runs
 * and distinct per stack: the readable part, cut to fit, plus a short hash of the full input.
 */
export function storageAccountName(namePrefix: string, stack: string): string {
    const full = `${namePrefix}-${stack}`;
    const readable = full.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 16);
    return `${readable}${fnv1a(full).slice(0, 8)}`.padEnd(3, "0");
}

function fnv1a(text: string): string {
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
        h ^= text.charCodeAt(i);
        h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h.toString(16).padStart(8, "0");
}

const DB_KEYS = [
    "name",
    "host",
    "port",
    "user",
    "schedule",
    "retentionDays",
    "keepMin",
    "verifySchedule",
    "rpoHours",
    "criticality",
    "postgresMajor",
];

/** PostgreSQL majors the job image carries client tools for. */
export const SUPPORTED_PG_MAJORS = [13, 14, 15, 16, 17];

function readDatabase(r: Reader, key: string, raw: unknown, namePrefix: string): DatabaseConfig | undefined {
    const o = r.object(key, raw, DB_KEYS);
    if (!o) {
        return undefined;
    }
    const name = r.string(`${key}.name`, o.name, DB_NAME, "a PostgreSQL name: lowercase letters, digits and _, at most 63");
    const db = {
        name,
        host: r.string(`${key}.host`, o.host, /^[A-Za-z0-9.-]+$/, "a host or Service name"),
        port: r.int(`${key}.port`, o.port ?? 5432, 1, 65535, "a TCP port"),
        user: r.string(`${key}.user`, o.user, /^[A-Za-z0-9_.-]+$/, "a PostgreSQL role name"),
        schedule: r.cron(`${key}.schedule`, o.schedule),
        retentionDays: r.int(`${key}.retentionDays`, o.retentionDays, 1, 3650, "days of retention"),
        keepMin: r.int(`${key}.keepMin`, o.keepMin ?? 3, 1, 1000, "backups always kept"),
        verifySchedule: r.cron(`${key}.verifySchedule`, o.verifySchedule),
        rpoHours: r.int(`${key}.rpoHours`, o.rpoHours ?? 24, 1, 24 * 366, "hours of acceptable data loss"),
        criticality: r.oneOf(`${key}.criticality`, o.criticality ?? "medium", ["critical", "high", "medium", "low"] as const),
        postgresMajor: r.int(`${key}.postgresMajor`, o.postgresMajor ?? 15, SUPPORTED_PG_MAJORS[0], SUPPORTED_PG_MAJORS.at(-1)!, "a PostgreSQL major version"),
    };
    if (name !== undefined) {
        for (const kind of ["backup", "verify"] as const) {
            const job = cronJobName(namePrefix, name, kind);
            if (job.length > CRONJOB_NAME_MAX || !DNS_LABEL.test(job)) {
                r.fail(`${key}.name`, name, `a name whose CronJob name "${job}" is a DNS label of at most ${CRONJOB_NAME_MAX} characters`);
            }
        }
    }
    if (db.schedule !== undefined && db.rpoHours !== undefined) {
        const gap = maxIntervalMinutes(db.schedule);
        if (gap > db.rpoHours * 60) {
            r.fail(
                `${key}.schedule`,
                db.schedule,
                `a schedule whose longest gap (${Number.isFinite(gap) ? `${gap / 60} h` : "never repeats"}) is within the RPO of ${db.rpoHours} h`,
            );
        }
    }
    return Object.values(db).every((v) => v !== undefined) ? (db as DatabaseConfig) : undefined;
}

/** Validates raw stack config; returns the typed config or throws one ConfigError listing every problem. */
export function validateStackConfig(raw: RawConfig): StackConfig {
    const r = new Reader();
    const v = raw.values;
    for (const k of Object.keys(v)) {
        if (!TOP_KEYS.includes(k)) {
            r.fail(k, v[k], `no such key (known: ${TOP_KEYS.join(", ")})`);
        }
    }
    const namePrefix = r.string("namePrefix", v.namePrefix ?? "kx-backup", DNS_LABEL, "lowercase letters, digits and hyphens") ?? "kx-backup";
    if (!DNS_LABEL.test(raw.stack)) {
        r.fail("(stack name)", raw.stack, "a stack name of lowercase letters, digits and hyphens (it becomes part of resource names)");
    }

    // Databases.
    const databases: DatabaseConfig[] = [];
    if (!Array.isArray(v.databases) || v.databases.length === 0) {
        r.fail("databases", v.databases, "a non-empty list of databases");
    } else {
        v.databases.forEach((d, i) => {
            const db = readDatabase(r, `databases[${i}]`, d, namePrefix);
            if (db) {
                databases.push(db);
            }
        });
        const seen = new Set<string>();
        const seenKube = new Map<string, string>();
        for (const db of databases) {
            if (seen.has(db.name)) {
                r.fail("databases", db.name, "each database name once (duplicate)");
            }
            const kn = kubeName(db.name);
            if (seenKube.has(kn) && seenKube.get(kn) !== db.name) {
                r.fail("databases", db.name, `names that stay distinct in Kubernetes (${seenKube.get(kn)} also becomes ${kn})`);
            }
            seen.add(db.name);
            seenKube.set(kn, db.name);
            if (!raw.passwordsFor.includes(db.name)) {
                r.fail(
                    `dbPasswords.${db.name}`,
                    undefined,
                    `a secret: pulumi config set --secret --path 'dbPasswords.${db.name}' <password>`,
                );
            }
        }
    }
    const minRetention = databases.length ? Math.min(...databases.map((d) => d.retentionDays)) : Infinity;

    // Targets.
    const targets: { pvc?: PvcTargetConfig; s3?: S3TargetConfig; azure?: AzureTargetConfig } = {};
    const t = r.object("targets", v.targets ?? {}, ["pvc", "s3", "azure"]);
    if (t) {
        if (t.pvc !== undefined) {
            const o = r.object("targets.pvc", t.pvc, ["size", "storageClass"]);
            if (o) {
                const size = r.string("targets.pvc.size", o.size, QUANTITY, "a Kubernetes quantity such as 50Gi");
                const storageClass = o.storageClass === undefined ? undefined : r.string("targets.pvc.storageClass", o.storageClass, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "a StorageClass name");
                if (size) {
                    targets.pvc = { size, storageClass };
                }
            }
        }
        if (t.s3 !== undefined) {
            const o = r.object("targets.s3", t.s3, ["region", "prefix", "objectLockMode", "objectLockDays", "replicaRegion", "noncurrentVersionDays", "access"]);
            if (o) {
                const region = r.string("targets.s3.region", o.region, AWS_REGION, "an AWS region such as eu-west-1");
                const prefix = r.string("targets.s3.prefix", o.prefix ?? "krystalinex", /^[a-z0-9][a-z0-9._-]*$/, "a key prefix of lowercase letters, digits, . _ -");
                let objectLock: S3TargetConfig["objectLock"];
                if (o.objectLockDays !== undefined) {
                    const days = r.int("targets.s3.objectLockDays", o.objectLockDays, 1, 3650, "days");
                    const mode = r.oneOf("targets.s3.objectLockMode", o.objectLockMode ?? "GOVERNANCE", ["GOVERNANCE", "COMPLIANCE"] as const);
                    if (days !== undefined && days > minRetention) {
                        r.fail("targets.s3.objectLockDays", days, `at most the shortest database retention (${minRetention} days), or prune could never delete`);
                    }
                    objectLock = days !== undefined && mode ? { days, mode } : undefined;
                } else if (o.objectLockMode !== undefined) {
                    r.fail("targets.s3.objectLockMode", o.objectLockMode, "only together with targets.s3.objectLockDays");
                }
                const replicaRegion = o.replicaRegion === undefined ? undefined : r.string("targets.s3.replicaRegion", o.replicaRegion, AWS_REGION, "an AWS region other than targets.s3.region");
                if (replicaRegion !== undefined && replicaRegion === region) {
                    r.fail("targets.s3.replicaRegion", replicaRegion, "an AWS region other than targets.s3.region");
                }
                const noncurrentVersionDays = r.int("targets.s3.noncurrentVersionDays", o.noncurrentVersionDays ?? 7, 1, 365, "days");
                const access = r.oneOf("targets.s3.access", o.access ?? "irsa", ["irsa", "static-keys"] as const);
                if (region && prefix && noncurrentVersionDays && access) {
                    targets.s3 = { region, prefix, objectLock, replicaRegion, noncurrentVersionDays, access };
                }
            }
            const bucketProblem = bucketNameProblem(`${bucketBaseName(namePrefix, raw.stack)}-abcdefg`);
            if (bucketProblem) {
                r.fail("namePrefix", namePrefix, `a prefix that, with the stack name, makes a valid S3 bucket name (${bucketProblem})`);
            }
        }
        if (t.azure !== undefined) {
            const o = r.object("targets.azure", t.azure, ["location", "resourceGroup", "prefix", "accountName", "containerName", "immutabilityDays", "noncurrentVersionDays", "softDeleteDays", "access"]);
            if (o) {
                const location = r.string("targets.azure.location", o.location, /^[a-z0-9]+$/, "an Azure location such as westeurope");
                const resourceGroup = r.string("targets.azure.resourceGroup", o.resourceGroup, /^[-\w._()]{1,89}[-\w_()]$/, "a resource group name (1–90 letters, digits, - _ . ( ))");
                const prefix = r.string("targets.azure.prefix", o.prefix ?? "krystalinex", /^[a-z0-9][a-z0-9._-]*$/, "a blob prefix of lowercase letters, digits, . _ -");
                const accountName = o.accountName === undefined ? undefined : r.string("targets.azure.accountName", o.accountName, /^[a-z0-9]{3,24}$/, "3 to 24 lowercase letters and digits");
                const containerName = r.string("targets.azure.containerName", o.containerName ?? "backups", /^(?=.{3,63}$)[a-z0-9](-?[a-z0-9])*$/, "3 to 63 lowercase letters, digits and single hyphens");
                const immutabilityDays = o.immutabilityDays === undefined ? undefined : r.int("targets.azure.immutabilityDays", o.immutabilityDays, 1, 3650, "days");
                if (immutabilityDays !== undefined && immutabilityDays > minRetention) {
                    r.fail("targets.azure.immutabilityDays", immutabilityDays, `at most the shortest database retention (${minRetention} days), or prune could never delete`);
                }
                const noncurrentVersionDays = r.int("targets.azure.noncurrentVersionDays", o.noncurrentVersionDays ?? 7, 1, 365, "days");
                const softDeleteDays = r.int("targets.azure.softDeleteDays", o.softDeleteDays ?? 7, 1, 365, "days");
                const access = r.oneOf("targets.azure.access", o.access ?? "workload-identity", ["workload-identity", "connection-string"] as const);
                if (location && resourceGroup && prefix && containerName && noncurrentVersionDays && softDeleteDays && access) {
                    targets.azure = { location, resourceGroup, prefix, accountName, containerName, immutabilityDays, noncurrentVersionDays, softDeleteDays, access };
                }
            }
        }
        if (t.pvc === undefined && t.s3 === undefined && t.azure === undefined) {
            r.fail("targets", v.targets, "at least one of pvc, s3, azure");
        }
    }

    // Kubernetes.
    const k = r.object("kubernetes", v.kubernetes ?? {}, ["namespace", "irsaOidcProviderArn", "irsaOidcIssuer", "azureOidcIssuer", "databaseCidrs", "resources"]) ?? {};
    const namespace = r.string("kubernetes.namespace", k.namespace ?? "krystalinex", DNS_LABEL, "a Kubernetes namespace name (DNS label)") ?? "krystalinex";
    let irsa: KubernetesConfig["irsa"];
    if (k.irsaOidcProviderArn !== undefined || k.irsaOidcIssuer !== undefined) {
        const arn = r.string("kubernetes.irsaOidcProviderArn", k.irsaOidcProviderArn, /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/.+$/, "an IAM OIDC provider ARN");
        const issuer = r.string("kubernetes.irsaOidcIssuer", k.irsaOidcIssuer, /^[^/:\s]+(\/[^\s]+)?$/, "the issuer without https://, e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC");
        irsa = arn && issuer ? { oidcProviderArn: arn, oidcIssuer: issuer } : undefined;
    }
    if (targets.s3?.access === "irsa" && irsa === undefined && k.irsaOidcProviderArn === undefined) {
        r.fail("kubernetes.irsaOidcProviderArn", undefined, "required when targets.s3.access is irsa (or set targets.s3.access to static-keys, dev only)");
    }
    const azureOidcIssuer = k.azureOidcIssuer === undefined ? undefined : r.string("kubernetes.azureOidcIssuer", k.azureOidcIssuer, /^https:\/\/\S+$/, "the AKS OIDC issuer URL (https://...)");
    if (targets.azure?.access === "workload-identity" && k.azureOidcIssuer === undefined) {
        r.fail("kubernetes.azureOidcIssuer", undefined, "required when targets.azure.access is workload-identity (or set it to connection-string, dev only)");
    }
    const cidrsRaw = k.databaseCidrs ?? [];
    const databaseCidrs: string[] = [];
    if (!Array.isArray(cidrsRaw)) {
        r.fail("kubernetes.databaseCidrs", cidrsRaw, "a list of CIDR blocks");
    } else {
        cidrsRaw.forEach((c, i) => {
            const cidr = r.string(`kubernetes.databaseCidrs[${i}]`, c, CIDR, "a CIDR block such as 10.0.0.0/16");
            if (cidr) {
                databaseCidrs.push(cidr);
            }
        });
    }
    const res = r.object("kubernetes.resources", k.resources ?? {}, ["cpuRequest", "memoryRequest", "cpuLimit", "memoryLimit"]) ?? {};
    const resources = {
        cpuRequest: r.string("kubernetes.resources.cpuRequest", res.cpuRequest ?? "250m", QUANTITY, "a CPU quantity such as 250m") ?? "",
        memoryRequest: r.string("kubernetes.resources.memoryRequest", res.memoryRequest ?? "256Mi", QUANTITY, "a memory quantity such as 256Mi") ?? "",
        cpuLimit: r.string("kubernetes.resources.cpuLimit", res.cpuLimit ?? "2", QUANTITY, "a CPU quantity such as 2") ?? "",
        memoryLimit: r.string("kubernetes.resources.memoryLimit", res.memoryLimit ?? "512Mi", QUANTITY, "a memory quantity such as 512Mi") ?? "",
    };

    // Image.
    const im = r.object("image", v.image ?? {}, ["build", "repository", "tag", "ref", "platform"]) ?? {};
    const build = r.bool("image.build", im.build ?? false) ?? false;
    const image: ImageConfig = {
        build,
        repository: im.repository === undefined ? undefined : r.string("image.repository", im.repository, /^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)+$/, "a registry repository such as ghcr.io/org/kx-backup"),
        tag: r.string("image.tag", im.tag ?? "0.1.0", /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, "a Docker tag") ?? "0.1.0",
        ref: im.ref === undefined ? undefined : r.string("image.ref", im.ref, /^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)+(:[A-Za-z0-9_][A-Za-z0-9_.-]*|@sha256:[a-f0-9]{64})$/, "an image reference with a tag or digest"),
        platform: r.string("image.platform", im.platform ?? "linux/amd64", /^linux\/(amd64|arm64)$/, "linux/amd64 or linux/arm64") ?? "linux/amd64",
    };
    if (image.tag === "latest") {
        r.fail("image.tag", "latest", "an explicit version tag, never latest");
    }
    if (image.ref !== undefined && /:latest$/.test(image.ref)) {
        r.fail("image.ref", image.ref, "an explicit version tag or digest, never latest");
    }
    if (build && im.repository === undefined) {
        r.fail("image.repository", undefined, "required when image.build is true");
    }
    if (!build && im.ref === undefined) {
        r.fail("image.ref", undefined, "required when image.build is false");
    }

    const n = r.object("notifications", v.notifications ?? {}, ["ntfy"]) ?? {};
    const ntfy = r.bool("notifications.ntfy", n.ntfy ?? false) ?? false;
    if (ntfy && !raw.hasNtfyUrl) {
        r.fail("ntfyUrl", undefined, "a secret when notifications.ntfy is true: pulumi config set --secret ntfyUrl https://ntfy.sh/<topic>");
    }

    // Volumes and configuration (archives).
    const volumes: VolumeConfig[] = [];
    const rawVolumes = v.volumes ?? [];
    if (!Array.isArray(rawVolumes)) {
        r.fail("volumes", rawVolumes, "a list of {name, pvc, schedule, retentionWeeks}");
    } else {
        rawVolumes.forEach((raw, i) => {
            const key = `volumes[${i}]`;
            const o = r.object(key, raw, ["name", "pvc", "schedule", "retentionWeeks", "keepMin"]);
            if (!o) {
                return;
            }
            const name = r.string(`${key}.name`, o.name, DNS_LABEL, "lowercase letters, digits and hyphens");
            const vol = {
                name,
                pvc: r.string(`${key}.pvc`, o.pvc, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "an existing PersistentVolumeClaim name"),
                schedule: r.cron(`${key}.schedule`, o.schedule ?? "0 3 * * 0"),
                retentionWeeks: r.int(`${key}.retentionWeeks`, o.retentionWeeks ?? 4, 1, 520, "weeks of retention"),
                keepMin: r.int(`${key}.keepMin`, o.keepMin ?? 2, 1, 1000, "archives always kept"),
            };
            if (name !== undefined) {
                const job = `${namePrefix}-archive-${name}`;
                if (job.length > CRONJOB_NAME_MAX) {
                    r.fail(`${key}.name`, name, `a name whose CronJob name "${job}" has at most ${CRONJOB_NAME_MAX} characters`);
                }
                if (databases.some((d) => kubeName(d.name) === name) || name === CONFIG_ARCHIVE_NAME || volumes.some((x) => x.name === name)) {
                    r.fail(`${key}.name`, name, "a name used by no database, other volume or the configuration export");
                }
            }
            if (Object.values(vol).every((x) => x !== undefined)) {
                volumes.push(vol as VolumeConfig);
            }
        });
    }
    let configBackup: ConfigBackupConfig | undefined;
    if (v.configBackup !== undefined) {
        const o = r.object("configBackup", v.configBackup, ["schedule", "retentionDays"]);
        if (o) {
            const schedule = r.cron("configBackup.schedule", o.schedule ?? "15 * * * *");
            const retentionDays = o.retentionDays === undefined ? undefined : r.int("configBackup.retentionDays", o.retentionDays, 1, 36500, "days");
            if (!targets.s3 && !targets.azure) {
                r.fail("configBackup", v.configBackup, "an S3 or Azure target: the export holds Secrets, which go only to encrypted targets");
            }
            configBackup = schedule ? { schedule, retentionDays } : undefined;
        }
    }

    if (r.problems.length > 0) {
        throw new ConfigError(r.problems);
    }
    return {
        stack: raw.stack,
        namePrefix,
        databases,
        targets,
        kubernetes: { namespace, irsa, azureOidcIssuer, databaseCidrs, resources },
        image,
        notifications: { ntfy },
        volumes,
        configBackup,
    };
}
