/**
 * Across the stack: every database is backed up and verified, retention and schedules agree with
 * the storage and the RPO, every store has its companions; and what could not be checked because
 * values were unknown at preview is said, not passed.
 */
import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { ANNOTATIONS } from "../components/kubernetes/annotations";
import { maxIntervalMinutes } from "../components/cron";
import { known, Props, related, T, UNKNOWN } from "./common";
import { podSpecOf } from "./kubernetes";

type Component = "backup" | "verify" | "archive";

const byType = (resources: PolicyResource[], type: string) => resources.filter((r) => r.type === type);

interface Job {
    resource: PolicyResource;
    component?: Component;
    database?: string;
    retentionDays?: number;
    /** The lifecycle prefixes this job's backups live under, per target. */
    s3Prefix?: string;
    azurePrefix?: string;
    schedule?: string;
}

const COMPONENTS: Component[] = ["backup", "verify", "archive"];

/**
 * Every CronJob that runs kx-backup, labelled or not: what it does from its container's first
 * argument (else its component label), what it backs up from its annotations (always known), else
 * from its env (unknown at preview when it holds a bucket name).
 */
export function backupJobs(resources: PolicyResource[]): Job[] {
    return resources.filter((r) => r.type === T.cronJob).flatMap((r): Job[] => {
        const pod = known(() => podSpecOf(r.type, r.props));
        const containers: Props[] = pod === UNKNOWN ? [] : pod?.containers ?? [];
        const main = containers.find((c) => COMPONENTS.includes(known(() => c.args?.[0]) as Component));
        const label = known(() => r.props.metadata?.labels?.["app.kubernetes.io/component"]);
        const component = (main ? main.args[0] : COMPONENTS.includes(label as Component) ? label : undefined) as Component | undefined;
        if (!component) {
            return [];
        }
        const a: Record<string, string | undefined> = (known(() => r.props.metadata?.annotations) as Record<string, string> | typeof UNKNOWN | undefined) === UNKNOWN ? {} : r.props.metadata?.annotations ?? {};
        const envList = known(() => (main ?? containers[0])?.env);
        const env: Record<string, string | undefined> = Object.fromEntries(
            (envList === UNKNOWN ? [] : (envList ?? []) as Props[]).map((e) => [e.name, known(() => e.value) === UNKNOWN ? undefined : e.value]),
        );
        const database = a[ANNOTATIONS.database] ?? env.PGDATABASE;
        const retention = a[ANNOTATIONS.retentionDays] ?? env.BACKUP_RETENTION_DAYS;
        const folder = (prefix: string | undefined) => `${(prefix ?? "krystalinex").replace(/^\/+|\/+$/g, "")}/${database}/`;
        const schedule = known(() => r.props.spec?.schedule);
        return [{
            resource: r,
            component,
            database,
            retentionDays: retention === undefined ? undefined : Number(retention),
            s3Prefix: a[ANNOTATIONS.s3Prefix] ?? (env.BACKUP_S3_BUCKET !== undefined ? folder(env.BACKUP_S3_PREFIX) : undefined),
            azurePrefix: a[ANNOTATIONS.azurePrefix] ?? (env.BACKUP_AZURE_CONTAINER !== undefined ? `${env.BACKUP_AZURE_CONTAINER}/${folder(env.BACKUP_AZURE_PREFIX)}` : undefined),
            schedule: schedule === UNKNOWN ? undefined : schedule,
        }];
    });
}

interface CoverageConfig {
    /** The databases that must be protected, from the stack's config (policies/config.<stack>.json). */
    databases?: string[];
}

export const stackEveryDatabaseCovered: StackValidationPolicy = {
    name: "kx-stack-backup-and-verify",
    description: "Every database — named in the pack config, or given a password Secret or a job in the stack — has a backup CronJob and a verify CronJob.",
    configSchema: { properties: { databases: { type: "array", items: { type: "string" } } } },
    validateStack: (args, reportViolation) => {
        const jobs = backupJobs(args.resources).filter((j) => j.component !== "archive");
        const databases = new Set<string>(args.getConfig<CoverageConfig>().databases ?? []);
        for (const j of jobs) {
            if (j.database) {
                databases.add(j.database);
            }
        }
        for (const secret of args.resources.filter((r) => r.type === T.secret)) {
            const db = known(() => secret.props.metadata?.annotations?.[ANNOTATIONS.database]);
            if (typeof db === "string") {
                databases.add(db);
            }
        }
        for (const db of [...databases].sort()) {
            for (const component of ["backup", "verify"] as const) {
                if (!jobs.some((j) => j.database === db && j.component === component)) {
                    reportViolation(`database ${db} has no ${component} CronJob`);
                }
            }
        }
    },
};

const lifecycleRules = (resources: PolicyResource[], include: (r: PolicyResource) => boolean): Props[] =>
    resources.filter((r) => r.type === T.lifecycle && include(r)).flatMap((r) => {
        const rules = known(() => r.props.rules);
        return rules === UNKNOWN ? [] : ((rules ?? []) as Props[]);
    });

export const stackRetentionMatches: StackValidationPolicy = {
    name: "kx-stack-retention-matches",
    description: "Each target's lifecycle rule for a database (or archived volume) expires at its retention.",
    validateStack: (args, reportViolation) => {
        // The primary buckets: those no replication configuration writes into.
        const replicas = new Set(args.resources.filter((r) => r.type === "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
            .flatMap((r) => (r.propertyDependencies?.rules ?? []).map((d) => d.urn)));
        const primary = (lc: PolicyResource) => !(lc.propertyDependencies?.bucket ?? []).some((d) => replicas.has(d.urn));
        for (const job of backupJobs(args.resources).filter((j) => j.component === "backup" || (j.component === "archive" && j.retentionDays !== undefined))) {
            const retention = job.retentionDays;
            if (!job.database || retention === undefined || !Number.isFinite(retention)) {
                continue; // Reported by kx-stack-unverifiable.
            }
            if (job.s3Prefix !== undefined) {
                const prefix = job.s3Prefix;
                const rule = lifecycleRules(args.resources, primary).find((r) => (r.filter?.prefix ?? r.prefix) === prefix);
                if (!rule) {
                    reportViolation(`no S3 lifecycle rule for ${prefix}`, job.resource.urn);
                } else if (rule.expiration?.days !== retention) {
                    reportViolation(`S3 rule for ${prefix} expires at ${rule.expiration?.days} days, the database keeps ${retention}`, job.resource.urn);
                }
            }
            if (job.azurePrefix !== undefined) {
                const prefix = job.azurePrefix;
                const rules = args.resources.filter((r) => r.type === T.managementPolicy).flatMap((r) => {
                    const policy = known(() => r.props.policy);
                    return policy === UNKNOWN ? [] : ((policy?.rules ?? []) as Props[]);
                });
                const rule = rules.find((r) => (r.definition?.filters?.prefixMatch ?? []).includes(prefix));
                const days = rule?.definition?.actions?.baseBlob?.delete?.daysAfterModificationGreaterThan;
                if (!rule) {
                    reportViolation(`no Azure management rule for ${prefix}`, job.resource.urn);
                } else if (days !== retention) {
                    reportViolation(`Azure rule for ${prefix} deletes after ${days} days, the database keeps ${retention}`, job.resource.urn);
                }
            }
        }
    },
};

/** Per-database RPO in hours; `default` for the rest. */
interface RpoConfig {
    rpoHours?: Record<string, number>;
}

export const stackScheduleMeetsRpo: StackValidationPolicy = {
    name: "kx-stack-schedule-rpo",
    description: "Each backup schedule never leaves a gap longer than the database's RPO (pack config rpoHours; default 24 h).",
    configSchema: { properties: { rpoHours: { type: "object", additionalProperties: { type: "number" } } } },
    validateStack: (args, reportViolation) => {
        const rpo = args.getConfig<RpoConfig>().rpoHours ?? { crypto_exchange: 6 };
        for (const job of backupJobs(args.resources).filter((j) => j.component === "backup")) {
            if (!job.database || !job.schedule) {
                continue;
            }
            const hours = rpo[job.database] ?? rpo.default ?? 24;
            let gap: number;
            try {
                gap = maxIntervalMinutes(job.schedule);
            } catch (e) {
                reportViolation(`backup of ${job.database}: schedule ${job.schedule} is invalid: ${(e as Error).message}`, job.resource.urn);
                continue;
            }
            if (gap > hours * 60) {
                reportViolation(`backup of ${job.database} runs "${job.schedule}": gaps of ${gap / 60} h exceed its RPO of ${hours} h`, job.resource.urn);
            }
        }
    },
};
export const stackTargetsComplete: StackValidationPolicy = {
    name: "kx-stack-targets-complete",
    description: "Every S3 bucket has its own versioning, KMS encryption, public-access blocks, bucket policy and lifecycle rules (and, when lock-enabled, a default retention); every storage account its blob service and management policy.",
    validateStack: (args, reportViolation) => {
        const needs: [string, string][] = [[T.versioning, "versioning"], [T.sse, "KMS encryption"], [T.publicAccess, "public-access blocks"], [T.bucketPolicy, "bucket policy (TLS only)"], [T.lifecycle, "lifecycle rules"]];
        for (const bucket of byType(args.resources, T.bucket)) {
            for (const [type, what] of needs) {
                if (!args.resources.some((r) => r.type === type && related(r, bucket, "bucket"))) {
                    reportViolation(`bucket ${bucket.name} has no ${what}`, bucket.urn);
                }
            }
            if (known(() => bucket.props.objectLockEnabled) === true) {
                const lock = args.resources.find((r) => r.type === T.objectLock && related(r, bucket, "bucket"));
                const days = lock && known(() => lock.props.rule?.defaultRetention?.days ?? lock.props.rule?.defaultRetention?.years);
                if (!lock || days === undefined) {
                    reportViolation(`bucket ${bucket.name} is lock-enabled without a default retention: nothing is locked`, bucket.urn);
                }
            }
        }
        for (const account of byType(args.resources, T.account)) {
            for (const [type, what] of [[T.blobService, "blob service properties (versioning, soft delete)"], [T.managementPolicy, "management policy"]] as const) {
                if (!args.resources.some((r) => r.type === type && related(r, account, "accountName"))) {
                    reportViolation(`storage account ${known(() => account.props.accountName) === UNKNOWN ? account.name : account.props.accountName ?? account.name} has no ${what}`, account.urn);
                }
            }
        }
    },
};

/** Advisory: what the stack policies could not check because values are unknown at preview. */
export const stackUnverifiable: StackValidationPolicy = {
    name: "kx-stack-unverifiable",
    description: "Reports what the stack policies could not check because values were unknown (typically at preview before first creation).",
    enforcementLevel: "advisory",
    validateStack: (args, reportViolation) => {
        for (const job of backupJobs(args.resources)) {
            const missing = [
                !job.database && "database",
                job.component === "backup" && job.retentionDays === undefined && "retention",
                !job.schedule && "schedule",
            ].filter(Boolean);
            if (missing.length > 0) {
                reportViolation(`${job.resource.name}: cannot check retention/RPO, unknown: ${missing.join(", ")}`, job.resource.urn);
            }
        }
        for (const lc of args.resources.filter((r) => r.type === T.lifecycle)) {
            if (known(() => lc.props.bucket) === undefined && (lc.propertyDependencies?.bucket ?? []).length === 0) {
                reportViolation(`${lc.name}: cannot tell which bucket this lifecycle belongs to`, lc.urn);
            }
        }
        const unknownProps: [string, string, string][] = [
            [T.bucketPolicy, "policy", "TLS-only and the governance-bypass deny are not checked until the bucket exists"],
            [T.role, "assumeRolePolicy", "the OIDC trust (one issuer, exact subjects) is not checked until the account is known"],
            [T.objectLock, "rule", "the lock retention is not compared with expiration"],
        ];
        for (const [type, prop, what] of unknownProps) {
            for (const r of args.resources.filter((x) => x.type === type)) {
                if (known(() => r.props[prop]) === UNKNOWN) {
                    reportViolation(`${r.name}: ${prop} is unknown at preview: ${what}`, r.urn);
                }
            }
        }
    },
};

