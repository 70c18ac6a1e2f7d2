/**
 * The guardrails: each policy exported on its own so tests import it without starting a policy
 * server (only ./index.ts constructs the PolicyPack). Resource policies judge one resource;
 * stack policies correlate resources through property dependencies, parents, and (when values
 * are known) plain ids, and say what they could not check instead of passing silently.
 */
import type { PolicyResource, ReportViolation, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { maxIntervalMinutes } from "../components/cron";
import { ANNOTATIONS } from "../components/kubernetes/annotations";

type Props = Record<string, any>;

const T = {
    bucket: "aws:s3/bucket:Bucket",
    versioning: "aws:s3/bucketVersioning:BucketVersioning",
    sse: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    publicAccess: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    bucketPolicy: "aws:s3/bucketPolicy:BucketPolicy",
    lifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    objectLock: "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    account: "azure-native:storage:StorageAccount",
    blobService: "azure-native:storage:BlobServiceProperties",
    container: "azure-native:storage:BlobContainer",
    managementPolicy: "azure-native:storage:ManagementPolicy",
    cronJob: "kubernetes:batch/v1:CronJob",
    secret: "kubernetes:core/v1:Secret",
} as const;

const WORKLOADS = new Set([
    "kubernetes:batch/v1:CronJob",
    "kubernetes:batch/v1:Job",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:core/v1:Pod",
]);

function resourcePolicy(name: string, description: string, type: string | ((t: string) => boolean), check: (props: Props, report: (msg: string) => void) => void): ResourceValidationPolicy {
    const matches = typeof type === "string" ? (t: string) => t === type : type;
    return {
        name,
        description,
        validateResource: (args, reportViolation) => {
            if (matches(args.type)) {
                check(args.props, (msg) => reportViolation(msg));
            }
        },
    };
}

// ---------- S3 ----------

export const s3Versioning = resourcePolicy("kx-s3-versioning", "S3 backup buckets keep versions: an overwrite or delete stays recoverable.", T.versioning, (p, report) => {
    if (p.versioningConfiguration?.status !== "Enabled") {
        report(`versioning must be Enabled, is ${JSON.stringify(p.versioningConfiguration?.status)}`);
    }
});

export const s3KmsEncryption = resourcePolicy("kx-s3-sse-kms", "Backups are encrypted at rest with KMS.", T.sse, (p, report) => {
    const rules: Props[] = p.rules ?? [];
    if (rules.length === 0 || !rules.every((r) => /^aws:kms/.test(r.applyServerSideEncryptionByDefault?.sseAlgorithm ?? ""))) {
        report("server-side encryption must use aws:kms (a customer-managed key)");
    }
});

export const s3PublicAccessBlock = resourcePolicy("kx-s3-public-access-block", "All four public-access blocks on: backups are never public.", T.publicAccess, (p, report) => {
    const off = ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"].filter((k) => p[k] !== true);
    if (off.length > 0) {
        report(`public-access blocks not set: ${off.join(", ")}`);
    }
});

export function deniesInsecureTransport(policy: unknown): boolean {
    let doc: Props;
    try {
        doc = typeof policy === "string" ? JSON.parse(policy) : (policy as Props);
    } catch {
        return false;
    }
    const statements: Props[] = Array.isArray(doc?.Statement) ? doc.Statement : doc?.Statement ? [doc.Statement] : [];
    return statements.some((s) => s.Effect === "Deny" && String(s.Condition?.Bool?.["aws:SecureTransport"]) === "false");
}

export const s3TlsOnly = resourcePolicy("kx-s3-tls-only", "The bucket policy denies requests not made over TLS.", T.bucketPolicy, (p, report) => {
    if (p.policy !== undefined && !deniesInsecureTransport(p.policy)) {
        report("the bucket policy must deny requests where aws:SecureTransport is false");
    }
});

export const s3LifecycleRules = resourcePolicy("kx-s3-lifecycle", "Every lifecycle rule expires its objects and aborts incomplete multipart uploads.", T.lifecycle, (p, report) => {
    for (const rule of (p.rules ?? []) as Props[]) {
        if (rule.status !== "Enabled") {
            report(`rule ${rule.id} is not Enabled`);
            continue;
        }
        if (!(rule.expiration?.days > 0)) {
            report(`rule ${rule.id} does not expire current objects`);
        }
        if (!(rule.abortIncompleteMultipartUpload?.daysAfterInitiation > 0)) {
            report(`rule ${rule.id} does not abort incomplete multipart uploads`);
        }
    }
    if ((p.rules ?? []).length === 0) {
        report("a lifecycle configuration without rules expires nothing");
    }
});

export const s3NoDeprecatedV2 = resourcePolicy("kx-s3-no-deprecated-v2", "No deprecated *V2 S3 resource types (aws v7 names only).", (t) => /^aws:s3\/\w+V2:/.test(t), (_p, report) => {
    report("deprecated *V2 S3 resource type: use the aws v7 name without V2");
});

export const s3ObjectLockRequired = resourcePolicy("kx-s3-object-lock", "Buckets are created with object lock (WORM), so backups survive a compromised account.", T.bucket, (p, report) => {
    if (p.objectLockEnabled !== true) {
        report("the bucket is not object-lock enabled (set targets.s3.objectLockDays)");
    }
});

// ---------- Azure ----------

export const azureHttpsOnly = resourcePolicy("kx-azure-https-only", "Storage accounts accept HTTPS only.", T.account, (p, report) => {
    if (p.enableHttpsTrafficOnly !== true) {
        report("enableHttpsTrafficOnly must be true");
    }
});

export const azureTls12 = resourcePolicy("kx-azure-tls12", "Storage accounts require TLS 1.2 or newer.", T.account, (p, report) => {
    if (!["TLS1_2", "TLS1_3"].includes(p.minimumTlsVersion)) {
        report(`minimumTlsVersion must be TLS1_2 or newer, is ${JSON.stringify(p.minimumTlsVersion)}`);
    }
});

export const azureNoPublicBlobs = resourcePolicy("kx-azure-no-public-blobs", "No anonymous blob access on the account.", T.account, (p, report) => {
    if (p.allowBlobPublicAccess !== false) {
        report("allowBlobPublicAccess must be false");
    }
});

export const azureVersioningSoftDelete = resourcePolicy("kx-azure-versioning-soft-delete", "Blob versioning and soft delete for blobs and containers.", T.blobService, (p, report) => {
    if (p.isVersioningEnabled !== true) {
        report("isVersioningEnabled must be true");
    }
    if (p.deleteRetentionPolicy?.enabled !== true) {
        report("blob soft delete (deleteRetentionPolicy) must be enabled");
    }
    if (p.containerDeleteRetentionPolicy?.enabled !== true) {
        report("container soft delete (containerDeleteRetentionPolicy) must be enabled");
    }
});

export const azureContainerPrivate = resourcePolicy("kx-azure-container-private", "Containers are private.", T.container, (p, report) => {
    if ((p.publicAccess ?? "None") !== "None") {
        report(`publicAccess must be None, is ${JSON.stringify(p.publicAccess)}`);
    }
});

export const azureImmutabilityRequired = resourcePolicy("kx-azure-immutability", "Containers hold backups immutable (WORM) for a period.", T.container, (p, report) => {
    if (p.immutableStorageWithVersioning?.enabled !== true) {
        report("the container has no version-level immutability (set targets.azure.immutabilityDays)");
    }
});

// ---------- Kubernetes ----------

function podSpecOf(type: string, p: Props): Props | undefined {
    switch (type) {
        case "kubernetes:batch/v1:CronJob":
            return p.spec?.jobTemplate?.spec?.template?.spec;
        case "kubernetes:core/v1:Pod":
            return p.spec;
        default:
            return p.spec?.template?.spec;
    }
}

function containersOf(spec: Props | undefined): Props[] {
    return [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])];
}

const isBackupCronJob = (p: Props) => p.metadata?.labels?.["app.kubernetes.io/name"] === "kx-backup";

export const k8sCronJobHardening: ResourceValidationPolicy = {
    name: "kx-k8s-cronjob-hardening",
    description: "Backup and verify CronJobs never overlap, keep bounded history, have resource limits and a restricted security context.",
    validateResource: (args, reportViolation) => {
        if (args.type !== T.cronJob || !isBackupCronJob(args.props)) {
            return;
        }
        const spec = args.props.spec ?? {};
        if (spec.concurrencyPolicy !== "Forbid") {
            reportViolation(`concurrencyPolicy must be Forbid, is ${JSON.stringify(spec.concurrencyPolicy)}`);
        }
        if (!(spec.successfulJobsHistoryLimit >= 1) || !(spec.failedJobsHistoryLimit >= 1)) {
            reportViolation("successfulJobsHistoryLimit and failedJobsHistoryLimit must be set");
        }
        const pod = podSpecOf(args.type, args.props) ?? {};
        if (pod.securityContext?.runAsNonRoot !== true) {
            reportViolation("the pod must run as non-root (securityContext.runAsNonRoot)");
        }
        for (const c of containersOf(pod)) {
            if (!c.resources?.limits?.memory || !c.resources?.limits?.cpu) {
                reportViolation(`container ${c.name} needs cpu and memory limits`);
            }
            const sc = c.securityContext ?? {};
            const problems = [
                sc.allowPrivilegeEscalation !== false && "allowPrivilegeEscalation: false",
                sc.readOnlyRootFilesystem !== true && "readOnlyRootFilesystem: true",
                !(sc.capabilities?.drop ?? []).includes("ALL") && "capabilities.drop: [ALL]",
                sc.privileged === true && "privileged: false",
            ].filter(Boolean);
            if (problems.length > 0) {
                reportViolation(`container ${c.name} needs a restricted security context: ${problems.join(", ")}`);
            }
        }
    },
};

export const SECRET_NAME = /(PASSWORD|TOKEN|SECRET|KEY|CONNECTION_STRING)/i;

export const k8sNoLiteralSecrets: ResourceValidationPolicy = {
    name: "kx-k8s-no-literal-secrets",
    description: "Env vars whose names look secret come from a Secret (secretKeyRef), never a literal.",
    validateResource: (args, reportViolation) => {
        if (!WORKLOADS.has(args.type)) {
            return;
        }
        for (const c of containersOf(podSpecOf(args.type, args.props))) {
            for (const e of (c.env ?? []) as Props[]) {
                if (SECRET_NAME.test(e.name) && e.value !== undefined) {
                    reportViolation(`container ${c.name}: env ${e.name} is a literal; use valueFrom.secretKeyRef`);
                }
            }
        }
    },
};

/** An image reference pinned by digest or an explicit tag other than latest. */
export function imageProblem(image: unknown): string | undefined {
    if (typeof image !== "string") {
        return undefined; // Unknown at preview (a digest still to be built): nothing to judge yet.
    }
    if (/@sha256:[a-f0-9]{64}$/.test(image)) {
        return undefined;
    }
    const lastSegment = image.slice(image.lastIndexOf("/") + 1);
    const tag = lastSegment.includes(":") ? lastSegment.slice(lastSegment.indexOf(":") + 1) : undefined;
    if (tag === undefined) {
        return `image ${image} is untagged: pin it by digest or an explicit version tag`;
    }
    if (tag === "latest") {
        return `image ${image} uses latest: pin it by digest or an explicit version tag`;
    }
    return undefined;
}

export const k8sImagesPinned: ResourceValidationPolicy = {
    name: "kx-k8s-images-pinned",
    description: "Images are pinned by digest or an explicit tag, never latest or untagged.",
    validateResource: (args, reportViolation) => {
        if (!WORKLOADS.has(args.type)) {
            return;
        }
        for (const c of containersOf(podSpecOf(args.type, args.props))) {
            const problem = imageProblem(c.image);
            if (problem) {
                reportViolation(`container ${c.name}: ${problem}`);
            }
        }
    },
};

// ---------- Stack-wide ----------

interface Job {
    resource: PolicyResource;
    component: "backup" | "verify" | "archive";
    database?: string;
    retentionDays?: number;
    /** The lifecycle prefixes this job's backups live under, per target. */
    s3Prefix?: string;
    azurePrefix?: string;
    schedule?: string;
}

/**
 * The backup/verify CronJobs and what they back up: from their annotations (always known), else
 * from their env (unknown at preview when it holds a bucket name).
 */
function backupJobs(resources: PolicyResource[]): Job[] {
    return resources
        .filter((r) => r.type === T.cronJob && isBackupCronJob(r.props))
        .map((r) => {
            const a: Record<string, string | undefined> = r.props.metadata?.annotations ?? {};
            const pod = podSpecOf(r.type, r.props);
            const env: Record<string, string | undefined> = Object.fromEntries(((pod?.containers?.[0]?.env ?? []) as Props[]).map((e) => [e.name, e.value]));
            const database = a[ANNOTATIONS.database] ?? env.PGDATABASE;
            const retention = a[ANNOTATIONS.retentionDays] ?? env.BACKUP_RETENTION_DAYS;
            const folder = (prefix: string | undefined) => `${(prefix ?? "krystalinex").replace(/^\/+|\/+$/g, "")}/${database}/`;
            return {
                resource: r,
                component: r.props.metadata?.labels?.["app.kubernetes.io/component"],
                database,
                retentionDays: retention === undefined ? undefined : Number(retention),
                s3Prefix: a[ANNOTATIONS.s3Prefix] ?? (env.BACKUP_S3_BUCKET !== undefined ? folder(env.BACKUP_S3_PREFIX) : undefined),
                azurePrefix: a[ANNOTATIONS.azurePrefix] ?? (env.BACKUP_AZURE_CONTAINER !== undefined ? `${env.BACKUP_AZURE_CONTAINER}/${folder(env.BACKUP_AZURE_PREFIX)}` : undefined),
                schedule: r.props.spec?.schedule,
            };
        });
}

/**
 * Whether `a` belongs with `b` (e.g. a lifecycle configuration with a bucket, or with the lock
 * configuration of the same bucket): a property dependency on `b` or on the same resource `b`
 * points at, the same parent component, or (when known) the same plain value.
 */
function related(a: PolicyResource, b: PolicyResource, prop: string): boolean {
    const targets = (r: PolicyResource) => new Set((r.propertyDependencies?.[prop] ?? []).map((d) => d.urn));
    const aTargets = targets(a);
    if (aTargets.has(b.urn) || [...targets(b)].some((u) => aTargets.has(u))) {
        return true;
    }
    if (a.parent && b.parent && a.parent.urn === b.parent.urn) {
        return true;
    }
    const value = a.props[prop];
    return value !== undefined && (value === b.props[prop] || value === b.props.bucket || value === b.props.id || value === `${b.name}-id`);
}

/** Database retention: from the pack config, else read off the backup CronJobs. */
interface StackConfig {
    /** Per-database RPO in hours; `default` for the rest. */
    rpoHours?: Record<string, number>;
}

export const stackEveryDatabaseCovered: StackValidationPolicy = {
    name: "kx-stack-backup-and-verify",
    description: "Every database has a backup CronJob and a verify CronJob.",
    validateStack: (args, reportViolation) => {
        // Archives (volumes, configuration) are not databases: only backup and verify jobs count.
        const jobs = backupJobs(args.resources).filter((j) => j.component !== "archive");
        const instance = (j: Job) => j.resource.props.metadata?.labels?.["app.kubernetes.io/instance"];
        const databases = new Set(jobs.map(instance).filter(Boolean));
        for (const secret of args.resources.filter((r) => r.type === T.secret)) {
            const m = /^kx-backup-db-(.+)$/.exec(secret.props.metadata?.name ?? "");
            if (m) {
                databases.add(m[1]);
            }
        }
        for (const db of databases) {
            for (const component of ["backup", "verify"] as const) {
                if (!jobs.some((j) => instance(j) === db && j.component === component)) {
                    reportViolation(`database ${db} has no ${component} CronJob`);
                }
            }
        }
    },
};

export const stackRetentionMatches: StackValidationPolicy = {
    name: "kx-stack-retention-matches",
    description: "Each target's lifecycle rule for a database (or archived volume) expires at its retention.",
    validateStack: (args, reportViolation) => {
        for (const job of backupJobs(args.resources).filter((j) => j.component === "backup" || (j.component === "archive" && j.retentionDays !== undefined))) {
            const retention = job.retentionDays;
            if (!job.database || retention === undefined || !Number.isFinite(retention)) {
                continue; // Reported by kx-stack-unverifiable.
            }
            if (job.s3Prefix !== undefined) {
                const prefix = job.s3Prefix;
                const rules = args.resources.filter((r) => r.type === T.lifecycle && !/replica/.test(r.name)).flatMap((r) => (r.props.rules ?? []) as Props[]);
                const rule = rules.find((r) => (r.filter?.prefix ?? r.prefix) === prefix);
                if (!rule) {
                    reportViolation(`no S3 lifecycle rule for ${prefix}`, job.resource.urn);
                } else if (rule.expiration?.days !== retention) {
                    reportViolation(`S3 rule for ${prefix} expires at ${rule.expiration?.days} days, the database keeps ${retention}`, job.resource.urn);
                }
            }
            if (job.azurePrefix !== undefined) {
                const prefix = job.azurePrefix;
                const rules = args.resources.filter((r) => r.type === T.managementPolicy).flatMap((r) => (r.props.policy?.rules ?? []) as Props[]);
                const rule = rules.find((r) => (r.definition?.filters?.prefixMatch ?? []).includes(prefix));
                if (!rule) {
                    reportViolation(`no Azure management rule for ${prefix}`, job.resource.urn);
                } else if (rule.definition?.actions?.baseBlob?.delete?.daysAfterModificationGreaterThan !== retention) {
                    reportViolation(`Azure rule for ${prefix} deletes after ${rule.definition?.actions?.baseBlob?.delete?.daysAfterModificationGreaterThan} days, the database keeps ${retention}`, job.resource.urn);
                }
            }
        }
    },
};

export const stackScheduleMeetsRpo: StackValidationPolicy = {
    name: "kx-stack-schedule-rpo",
    description: "Each backup schedule never leaves a gap longer than the database's RPO (pack config rpoHours; default 24 h).",
    configSchema: { properties: { rpoHours: { type: "object", additionalProperties: { type: "number" } } } },
    validateStack: (args, reportViolation) => {
        const rpo = args.getConfig<StackConfig>().rpoHours ?? { crypto_exchange: 6 };
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

export const stackS3LockWithinExpiration: StackValidationPolicy = {
    name: "kx-stack-s3-lock-within-expiration",
    description: "Object-lock retention never outlasts the bucket's lifecycle expiration (or prune could never delete).",
    validateStack: (args, reportViolation) => {
        for (const lock of args.resources.filter((r) => r.type === T.objectLock)) {
            const days = lock.props.rule?.defaultRetention?.days ?? (lock.props.rule?.defaultRetention?.years ?? 0) * 365;
            const lifecycles = args.resources.filter((r) => r.type === T.lifecycle && related(r, lock, "bucket"));
            for (const lc of lifecycles) {
                for (const rule of (lc.props.rules ?? []) as Props[]) {
                    if (rule.expiration?.days !== undefined && days > rule.expiration.days) {
                        reportViolation(`object lock of ${days} days outlasts lifecycle rule ${rule.id} (${rule.expiration.days} days)`, lock.urn);
                    }
                }
            }
        }
    },
};

export const stackTargetsComplete: StackValidationPolicy = {
    name: "kx-stack-targets-complete",
    description: "Every S3 bucket has versioning, KMS encryption, public-access blocks, a TLS-only policy and lifecycle rules; every storage account a blob service, container and management policy.",
    validateStack: (args, reportViolation) => {
        const needs: [string, string][] = [[T.versioning, "versioning"], [T.sse, "KMS encryption"], [T.publicAccess, "public-access blocks"], [T.bucketPolicy, "a TLS-only bucket policy"], [T.lifecycle, "lifecycle rules"]];
        for (const bucket of args.resources.filter((r) => r.type === T.bucket)) {
            for (const [type, what] of needs) {
                if (!args.resources.some((r) => r.type === type && related(r, bucket, "bucket"))) {
                    reportViolation(`bucket ${bucket.name} has no ${what}`, bucket.urn);
                }
            }
        }
        for (const account of args.resources.filter((r) => r.type === T.account)) {
            for (const [type, what] of [[T.blobService, "blob service properties (versioning, soft delete)"], [T.managementPolicy, "management policy"]] as const) {
                if (!args.resources.some((r) => r.type === type && (related(r, account, "accountName") || r.props.accountName === account.props.accountName))) {
                    reportViolation(`storage account ${account.props.accountName ?? account.name} has no ${what}`, account.urn);
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
            if (lc.props.bucket === undefined && (lc.propertyDependencies?.bucket ?? []).length === 0 && !lc.parent) {
                reportViolation(`${lc.name}: cannot tell which bucket this lifecycle belongs to`, lc.urn);
            }
        }
    },
};

export const resourcePolicies: ResourceValidationPolicy[] = [
    s3Versioning, s3KmsEncryption, s3PublicAccessBlock, s3TlsOnly, s3LifecycleRules, s3NoDeprecatedV2, s3ObjectLockRequired,
    azureHttpsOnly, azureTls12, azureNoPublicBlobs, azureVersioningSoftDelete, azureContainerPrivate, azureImmutabilityRequired,
    k8sCronJobHardening, k8sNoLiteralSecrets, k8sImagesPinned,
];

export const stackPolicies: StackValidationPolicy[] = [
    stackEveryDatabaseCovered, stackRetentionMatches, stackScheduleMeetsRpo, stackS3LockWithinExpiration, stackTargetsComplete, stackUnverifiable,
];

export type { ReportViolation };
