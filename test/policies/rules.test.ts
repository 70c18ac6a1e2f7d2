/** Each policy against a passing resource, and against the same resource with one field broken. */
import { describe, expect, it } from "vitest";
import * as rules from "../../policies/rules";
import { policyResource, resourceArgs, stackViolationsOf, violationsOf } from "./harness";

type Case = [string, string, Record<string, any>, (p: any) => void, RegExp];

const goodCronJob = () => ({
    metadata: { name: "kx-backup-backup-kong", labels: { "app.kubernetes.io/name": "kx-backup", "app.kubernetes.io/component": "backup", "app.kubernetes.io/instance": "kong" } },
    spec: {
        schedule: "0 1 * * *",
        concurrencyPolicy: "Forbid",
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: { spec: { template: { spec: {
            securityContext: { runAsNonRoot: true },
            containers: [{
                name: "kx-backup",
                image: "ghcr.io/krystalinex/kx-backup:0.1.0",
                env: [{ name: "PGDATABASE", value: "kong" }, { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: "kx-backup-db-kong", key: "password" } } }],
                resources: { limits: { cpu: "1", memory: "512Mi" } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
            }],
        } } } },
    },
});

const cases: Case[] = [
    ["kx-s3-versioning", "aws:s3/bucketVersioning:BucketVersioning", { versioningConfiguration: { status: "Enabled" } }, (p) => (p.versioningConfiguration.status = "Suspended"), /versioning must be Enabled, is "Suspended"/],
    ["kx-s3-sse-kms", "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: "arn" } }] }, (p) => (p.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm = "AES256"), /must use aws:kms/],
    ["kx-s3-public-access-block", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", { blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }, (p) => (p.restrictPublicBuckets = false), /not set: restrictPublicBuckets/],
    ["kx-s3-tls-only", "aws:s3/bucketPolicy:BucketPolicy", { policy: JSON.stringify({ Statement: [{ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }] }) }, (p) => (p.policy = JSON.stringify({ Statement: [{ Effect: "Allow" }] })), /deny requests where aws:SecureTransport is false/],
    ["kx-s3-lifecycle", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", { rules: [{ id: "expire-kong", status: "Enabled", filter: { prefix: "krystalinex/kong/" }, expiration: { days: 7 }, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } }] }, (p) => delete p.rules[0].abortIncompleteMultipartUpload, /rule expire-kong does not abort incomplete multipart uploads/],
    ["kx-s3-object-lock", "aws:s3/bucket:Bucket", { objectLockEnabled: true }, (p) => (p.objectLockEnabled = false), /not object-lock enabled/],
    ["kx-azure-https-only", "azure-native:storage:StorageAccount", { enableHttpsTrafficOnly: true }, (p) => (p.enableHttpsTrafficOnly = false), /enableHttpsTrafficOnly must be true/],
    ["kx-azure-tls12", "azure-native:storage:StorageAccount", { minimumTlsVersion: "TLS1_2" }, (p) => (p.minimumTlsVersion = "TLS1_0"), /must be TLS1_2 or newer, is "TLS1_0"/],
    ["kx-azure-no-public-blobs", "azure-native:storage:StorageAccount", { allowBlobPublicAccess: false }, (p) => (p.allowBlobPublicAccess = true), /allowBlobPublicAccess must be false/],
    ["kx-azure-versioning-soft-delete", "azure-native:storage:BlobServiceProperties", { isVersioningEnabled: true, deleteRetentionPolicy: { enabled: true, days: 7 }, containerDeleteRetentionPolicy: { enabled: true, days: 7 } }, (p) => (p.containerDeleteRetentionPolicy.enabled = false), /container soft delete/],
    ["kx-azure-container-private", "azure-native:storage:BlobContainer", { publicAccess: "None" }, (p) => (p.publicAccess = "Blob"), /publicAccess must be None, is "Blob"/],
    ["kx-azure-immutability", "azure-native:storage:BlobContainer", { immutableStorageWithVersioning: { enabled: true } }, (p) => delete p.immutableStorageWithVersioning, /no version-level immutability/],
    ["kx-k8s-cronjob-hardening", "kubernetes:batch/v1:CronJob", goodCronJob(), (p) => (p.spec.concurrencyPolicy = "Allow"), /concurrencyPolicy must be Forbid, is "Allow"/],
    ["kx-k8s-cronjob-hardening", "kubernetes:batch/v1:CronJob", goodCronJob(), (p) => (p.spec.jobTemplate.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false), /restricted security context: readOnlyRootFilesystem: true/],
    ["kx-k8s-cronjob-hardening", "kubernetes:batch/v1:CronJob", goodCronJob(), (p) => delete p.spec.jobTemplate.spec.template.spec.containers[0].resources.limits.memory, /needs cpu and memory limits/],
    ["kx-k8s-no-literal-secrets", "kubernetes:batch/v1:CronJob", goodCronJob(), (p) => (p.spec.jobTemplate.spec.template.spec.containers[0].env[1] = { name: "PGPASSWORD", value: "hunter2" }), /env PGPASSWORD is a literal; use valueFrom.secretKeyRef/],
    ["kx-k8s-images-pinned", "kubernetes:batch/v1:CronJob", goodCronJob(), (p) => (p.spec.jobTemplate.spec.template.spec.containers[0].image = "ghcr.io/krystalinex/kx-backup:latest"), /uses latest/],
    ["kx-k8s-images-pinned", "kubernetes:batch/v1:CronJob", goodCronJob(), (p) => (p.spec.jobTemplate.spec.template.spec.containers[0].image = "ghcr.io/krystalinex/kx-backup"), /is untagged/],
];

const byName = Object.fromEntries([...rules.resourcePolicies].map((p) => [p.name, p]));

describe("resource policies", () => {
    it.each(cases)("%s passes a good %s and catches one broken field", async (name, type, good, breakIt, message) => {
        const policy = byName[name];
        expect(await violationsOf(policy, resourceArgs(type, structuredClone(good)))).toEqual([]);
        const bad = structuredClone(good);
        breakIt(bad);
        const found = await violationsOf(policy, resourceArgs(type, bad));
        expect(found).toHaveLength(1);
        expect(found[0]).toMatch(message);
    });

    it("refuses deprecated V2 S3 types", async () => {
        expect(await violationsOf(rules.s3NoDeprecatedV2, resourceArgs("aws:s3/bucketVersioningV2:BucketVersioningV2", {}))).toHaveLength(1);
        expect(await violationsOf(rules.s3NoDeprecatedV2, resourceArgs("aws:s3/bucketVersioning:BucketVersioning", {}))).toHaveLength(0);
    });

    it("judges image references", () => {
        expect(rules.imageProblem(`repo/kx@sha256:${"a".repeat(64)}`)).toBeUndefined();
        expect(rules.imageProblem("registry:5000/kx:1.2.3")).toBeUndefined();
        expect(rules.imageProblem("registry:5000/kx")).toMatch(/untagged/);
        expect(rules.imageProblem(undefined)).toBeUndefined();
    });

    it("every resource policy is covered by a case above", () => {
        const covered = new Set([...cases.map((c) => c[0]), "kx-s3-no-deprecated-v2"]);
        expect(rules.resourcePolicies.map((p) => p.name).filter((n) => !covered.has(n))).toEqual([]);
    });
});

describe("stack policies", () => {
    const backupJob = (db: string, env: Record<string, string>, component = "backup", schedule = "0 */6 * * *") => {
        const cj = goodCronJob();
        cj.metadata.labels["app.kubernetes.io/instance"] = db.replace(/_/g, "-");
        cj.metadata.labels["app.kubernetes.io/component"] = component;
        cj.spec.schedule = schedule;
        cj.spec.jobTemplate.spec.template.spec.containers[0].env = Object.entries({ PGDATABASE: db, ...env }).map(([name, value]) => ({ name, value })) as never;
        return policyResource("kubernetes:batch/v1:CronJob", cj, `${component}-${db}`);
    };
    const lifecycle = (days: number, extra = {}) => policyResource("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", {
        bucket: "b-id",
        rules: [{ id: "expire-kong", status: "Enabled", filter: { prefix: "krystalinex/kong/" }, expiration: { days } }],
    }, "lc", extra);

    it("every database needs a backup and a verify CronJob", async () => {
        const secret = policyResource("kubernetes:core/v1:Secret", { metadata: { name: "kx-backup-db-goalert" } }, "s");
        const found = await stackViolationsOf(rules.stackEveryDatabaseCovered, [backupJob("kong", {}), backupJob("kong", {}, "verify"), secret]);
        expect(found.sort()).toEqual(["database goalert has no backup CronJob", "database goalert has no verify CronJob"]);
    });

    it("each target's rule matches the database's retention", async () => {
        const env = { BACKUP_RETENTION_DAYS: "7", BACKUP_S3_BUCKET: "b", BACKUP_S3_PREFIX: "krystalinex" };
        expect(await stackViolationsOf(rules.stackRetentionMatches, [backupJob("kong", env), lifecycle(7)])).toEqual([]);
        expect(await stackViolationsOf(rules.stackRetentionMatches, [backupJob("kong", env), lifecycle(30)])).toEqual([
            "S3 rule for krystalinex/kong/ expires at 30 days, the database keeps 7",
        ]);
        expect(await stackViolationsOf(rules.stackRetentionMatches, [backupJob("goalert", env), lifecycle(7)])).toEqual(["no S3 lifecycle rule for krystalinex/goalert/"]);
    });

    it("reads the CronJob's annotations when its env is unknown (preview)", async () => {
        const cj = backupJob("kong", {});
        cj.props.spec.jobTemplate.spec.template.spec.containers[0].env = undefined;
        cj.props.metadata.annotations = {
            "backup.krystalinex.io/database": "kong",
            "backup.krystalinex.io/retention-days": "7",
            "backup.krystalinex.io/s3-lifecycle-prefix": "krystalinex/kong/",
        };
        expect(await stackViolationsOf(rules.stackRetentionMatches, [cj, lifecycle(7)])).toEqual([]);
        expect(await stackViolationsOf(rules.stackRetentionMatches, [cj, lifecycle(8)])).toEqual(["S3 rule for krystalinex/kong/ expires at 8 days, the database keeps 7"]);
        expect(await stackViolationsOf(rules.stackUnverifiable, [cj])).toEqual([]);
    });

    it("the schedule meets the RPO from the pack config", async () => {
        const daily = backupJob("crypto_exchange", {}, "backup", "0 0 * * *");
        expect(await stackViolationsOf(rules.stackScheduleMeetsRpo, [daily], { rpoHours: { crypto_exchange: 6 } })).toEqual([
            'backup of crypto_exchange runs "0 0 * * *": gaps of 24 h exceed its RPO of 6 h',
        ]);
        expect(await stackViolationsOf(rules.stackScheduleMeetsRpo, [daily], { rpoHours: { default: 24 } })).toEqual([]);
    });

    it("object lock never outlasts expiration, correlated through property dependencies while ids are unknown", async () => {
        const bucket = policyResource("aws:s3/bucket:Bucket", {}, "b");
        const lock = policyResource("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", { rule: { defaultRetention: { days: 14 } } }, "lock", { propertyDependencies: { bucket: [bucket] } });
        const lc = policyResource("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", { rules: [{ id: "expire-kong", expiration: { days: 7 } }] }, "lc", { propertyDependencies: { bucket: [bucket] } });
        // Both point at the same bucket only through dependencies (preview: the id is unknown).
        expect(await stackViolationsOf(rules.stackS3LockWithinExpiration, [bucket, lock, lc])).toEqual(["object lock of 14 days outlasts lifecycle rule expire-kong (7 days)"]);
        const otherBucket = policyResource("aws:s3/bucket:Bucket", {}, "b2");
        const otherLc = policyResource("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", { rules: [{ id: "x", expiration: { days: 7 } }] }, "lc2", { propertyDependencies: { bucket: [otherBucket] } });
        expect(await stackViolationsOf(rules.stackS3LockWithinExpiration, [bucket, lock, otherBucket, otherLc])).toEqual([]);
    });

    it("a bucket missing its companions is reported, by parent correlation", async () => {
        const parent = policyResource("krystalinex:backup:S3BackupBucket", {}, "kx-s3");
        const bucket = policyResource("aws:s3/bucket:Bucket", {}, "b", { parent });
        const versioning = policyResource("aws:s3/bucketVersioning:BucketVersioning", {}, "v", { parent });
        const found = await stackViolationsOf(rules.stackTargetsComplete, [bucket, versioning]);
        expect(found).toEqual(["bucket b has no KMS encryption", "bucket b has no public-access blocks", "bucket b has no a TLS-only bucket policy", "bucket b has no lifecycle rules"]);
    });

    it("says what it could not check when values are unknown at preview", async () => {
        const cj = backupJob("kong", {});
        cj.props.spec.jobTemplate.spec.template.spec.containers[0].env = [];
        const found = await stackViolationsOf(rules.stackUnverifiable, [cj]);
        expect(found).toEqual(["backup-kong: cannot check retention/RPO, unknown: database, retention"]);
        expect(rules.stackUnverifiable.enforcementLevel).toBe("advisory");
    });
});
