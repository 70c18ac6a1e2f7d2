/** Each policy against a passing resource, and against the same resource with one field broken. */
import { describe, expect, it } from "vitest";
import * as rules from "../../policies/rules";
import { policyResource, resourceArgs, stackViolationsOf, UNKNOWN_STRING, violationsOf } from "./harness";

type Case = [string, string, Record<string, any>, (p: any) => void, RegExp];

const pod = (p: any) => p.spec.jobTemplate.spec.template.spec;

const goodCronJob = () => ({
    metadata: { name: "kx-backup-backup-kong", namespace: "krystalinex", labels: { "app.kubernetes.io/name": "kx-backup", "app.kubernetes.io/component": "backup", "app.kubernetes.io/instance": "kong" } as Record<string, string> },
    spec: {
        schedule: "0 1 * * *",
        concurrencyPolicy: "Forbid",
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: { spec: { activeDeadlineSeconds: 14400, template: { metadata: { labels: { "app.kubernetes.io/name": "kx-backup" } }, spec: {
            securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: "RuntimeDefault" } } as Record<string, any>,
            containers: [{
                name: "kx-backup",
                image: "ghcr.io/krystalinex/kx-backup:0.1.0",
                args: ["backup"],
                env: [{ name: "PGDATABASE", value: "kong" }, { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: "kx-backup-db-kong", key: "password" } } }] as Record<string, any>[],
                resources: { limits: { cpu: "1", memory: "512Mi" } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } } as Record<string, any>,
            }],
        } } } },
    },
});

const issuer = "oidc.eks.eu-west-1.amazonaws.com/id/5F1A3B7C9D2E4F60";
const goodTrust = () => ({
    assumeRolePolicy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{
            Effect: "Allow",
            Principal: { Federated: `arn:aws:iam::210987654321:oidc-provider/${issuer}` },
            Action: "sts:AssumeRoleWithWebIdentity",
            Condition: { StringEquals: { [`${issuer}:aud`]: "sts.amazonaws.com", [`${issuer}:sub`]: "system:serviceaccount:krystalinex:kx-backup" } },
        }],
    }),
});
const trustWith = (change: (s: any) => void) => (p: any) => {
    const doc = JSON.parse(p.assumeRolePolicy);
    change(doc.Statement[0]);
    p.assumeRolePolicy = JSON.stringify(doc);
};

const goodAccount = () => ({
    accountName: "kxbackupprod1234abcd",
    enableHttpsTrafficOnly: true,
    minimumTlsVersion: "TLS1_2",
    allowBlobPublicAccess: false,
    allowSharedKeyAccess: false,
    immutableStorageWithVersioning: { enabled: true, immutabilityPolicy: { immutabilityPeriodSinceCreationInDays: 7, state: "Locked", allowProtectedAppendWrites: false } },
});

const goodNetworkPolicy = () => ({
    metadata: { name: "kx-backup-egress", namespace: "krystalinex" },
    spec: {
        podSelector: { matchLabels: { "app.kubernetes.io/name": "kx-backup" } },
        policyTypes: ["Ingress", "Egress"],
        ingress: [],
        egress: [{ to: [{ podSelector: {} }], ports: [{ protocol: "TCP", port: 5432 }] }, { ports: [{ protocol: "TCP", port: 443 }] }],
    },
});

const SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration";
const CRON = "kubernetes:batch/v1:CronJob";

const cases: Case[] = [
    ["kx-s3-versioning", "aws:s3/bucketVersioning:BucketVersioning", { versioningConfiguration: { status: "Enabled" } }, (p) => (p.versioningConfiguration.status = "Suspended"), /versioning must be Enabled, is "Suspended"/],
    ["kx-s3-sse-kms", SSE, { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: "arn:aws:kms:eu-west-1:210987654321:key/k" } }] }, (p) => (p.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm = "AES256"), /must use aws:kms with a customer-managed key, uses "AES256"/],
    ["kx-s3-sse-kms", SSE, { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: "arn:aws:kms:eu-west-1:210987654321:key/k" } }] }, (p) => (p.rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId = "arn:aws:kms:eu-west-1:210987654321:alias/aws/s3"), /is the AWS-managed aws\/s3 key/],
    ["kx-s3-sse-kms", SSE, { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: "arn:aws:kms:eu-west-1:210987654321:key/k" } }] }, (p) => delete p.rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId, /aws:kms without kmsMasterKeyId uses the AWS-managed aws\/s3 key/],
    ["kx-s3-public-access-block", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", { blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }, (p) => (p.restrictPublicBuckets = false), /not set: restrictPublicBuckets/],
    ["kx-s3-tls-only", "aws:s3/bucketPolicy:BucketPolicy", { policy: JSON.stringify({ Statement: [{ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }] }) }, (p) => (p.policy = JSON.stringify({ Statement: [{ Effect: "Allow" }] })), /deny requests where aws:SecureTransport is false/],
    ["kx-s3-tls-only", "aws:s3/bucketPolicy:BucketPolicy", { policy: JSON.stringify({ Statement: [{ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }] }) }, (p) => delete p.policy, /the bucket policy has no document/],
    ["kx-s3-lifecycle", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", { rules: [{ id: "expire-kong", status: "Enabled", filter: { prefix: "krystalinex/kong/" }, expiration: { days: 7 }, noncurrentVersionExpiration: { noncurrentDays: 7 }, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } }] }, (p) => delete p.rules[0].abortIncompleteMultipartUpload, /rule expire-kong does not abort incomplete multipart uploads/],
    ["kx-s3-lifecycle", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", { rules: [{ id: "clean-up-k8s-config", status: "Enabled", filter: { prefix: "krystalinex/k8s-config/" }, noncurrentVersionExpiration: { noncurrentDays: 7 }, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } }] }, (p) => delete p.rules[0].noncurrentVersionExpiration, /rule clean-up-k8s-config keeps noncurrent versions forever/],
    ["kx-s3-object-lock", "aws:s3/bucket:Bucket", { objectLockEnabled: true }, (p) => (p.objectLockEnabled = false), /not object-lock enabled/],
    ["kx-iam-oidc-trust", "aws:iam/role:Role", goodTrust(), trustWith((s) => delete s.Condition.StringEquals[`${issuer}:sub`]), /without StringEquals on .*:sub: any ServiceAccount/],
    ["kx-iam-oidc-trust", "aws:iam/role:Role", goodTrust(), trustWith((s) => (s.Condition.StringEquals[`${issuer}:sub`] = "system:serviceaccount:krystalinex:kx-*")), /:sub must name exact ServiceAccounts/],
    ["kx-iam-oidc-trust", "aws:iam/role:Role", goodTrust(), trustWith((s) => delete s.Condition.StringEquals[`${issuer}:aud`]), /must require .*:aud = sts\.amazonaws\.com/],
    ["kx-iam-oidc-trust", "aws:iam/role:Role", goodTrust(), trustWith((s) => (s.Principal.Federated = [s.Principal.Federated, "arn:aws:iam::210987654321:oidc-provider/westeurope.oic.prod-aks.azure.com/t/i"])), /one statement trusts 2 OIDC providers/],
    ["kx-azure-https-only", "azure-native:storage:StorageAccount", goodAccount(), (p) => (p.enableHttpsTrafficOnly = false), /enableHttpsTrafficOnly must be true/],
    ["kx-azure-tls12", "azure-native:storage:StorageAccount", goodAccount(), (p) => (p.minimumTlsVersion = "TLS1_0"), /must be TLS1_2 or newer, is "TLS1_0"/],
    ["kx-azure-no-public-blobs", "azure-native:storage:StorageAccount", goodAccount(), (p) => (p.allowBlobPublicAccess = true), /allowBlobPublicAccess must be false/],
    ["kx-azure-no-shared-key", "azure-native:storage:StorageAccount", goodAccount(), (p) => delete p.allowSharedKeyAccess, /allowSharedKeyAccess must be false \(is undefined; Azure's default is true\)/],
    ["kx-azure-versioning-soft-delete", "azure-native:storage:BlobServiceProperties", { isVersioningEnabled: true, deleteRetentionPolicy: { enabled: true, days: 7 }, containerDeleteRetentionPolicy: { enabled: true, days: 7 } }, (p) => (p.containerDeleteRetentionPolicy.enabled = false), /container soft delete/],
    ["kx-azure-container-private", "azure-native:storage:BlobContainer", { publicAccess: "None" }, (p) => (p.publicAccess = "Blob"), /publicAccess must be None, is "Blob"/],
    ["kx-azure-immutability", "azure-native:storage:BlobContainer", { accountName: "a", containerName: "backups", immutableStorageWithVersioning: { enabled: true } }, (p) => delete p.immutableStorageWithVersioning, /version-level immutability is not enabled/],
    ["kx-azure-immutability", "azure-native:storage:StorageAccount", goodAccount(), (p) => delete p.immutableStorageWithVersioning.immutabilityPolicy, /immutability is enabled without a retention policy: nothing is held/],
    ["kx-azure-immutability", "azure-native:storage:StorageAccount", goodAccount(), (p) => (p.immutableStorageWithVersioning.immutabilityPolicy.state = "Unlocked"), /the immutability policy is Unlocked: anyone with rights on the account can shorten or remove it/],
    ["kx-k8s-cronjob-hardening", CRON, goodCronJob(), (p) => (p.spec.concurrencyPolicy = "Allow"), /concurrencyPolicy must be Forbid, is "Allow"/],
    ["kx-k8s-cronjob-hardening", CRON, goodCronJob(), (p) => (pod(p).containers[0].securityContext.readOnlyRootFilesystem = false), /restricted security context: readOnlyRootFilesystem: true/],
    ["kx-k8s-cronjob-hardening", CRON, goodCronJob(), (p) => delete pod(p).containers[0].resources.limits.memory, /needs cpu and memory limits/],
    ["kx-k8s-cronjob-hardening", CRON, goodCronJob(), (p) => (pod(p).securityContext.runAsUser = 0), /the pod runs as user 0 \(root\)/],
    ["kx-k8s-cronjob-hardening", CRON, goodCronJob(), (p) => (pod(p).containers[0].securityContext.runAsUser = 0), /restricted security context: runAsUser other than 0/],
    ["kx-k8s-cronjob-hardening", CRON, goodCronJob(), (p) => delete pod(p).securityContext.seccompProfile, /restricted security context: seccompProfile RuntimeDefault/],
    ["kx-k8s-cronjob-hardening", CRON, goodCronJob(), (p) => delete p.spec.jobTemplate.spec.activeDeadlineSeconds, /needs activeDeadlineSeconds/],
    // Unlabelled: the hardening still applies.
    ["kx-k8s-cronjob-hardening", CRON, { ...goodCronJob(), metadata: { name: "someone-elses-job" } }, (p) => (pod(p).securityContext.runAsNonRoot = false), /the pod must run as non-root/],
    ["kx-k8s-no-literal-secrets", CRON, goodCronJob(), (p) => (pod(p).containers[0].env[1] = { name: "PGPASSWORD", value: "hunter2" }), /env PGPASSWORD is a literal; use valueFrom.secretKeyRef/],
    ["kx-k8s-images-pinned", CRON, goodCronJob(), (p) => (pod(p).containers[0].image = "ghcr.io/krystalinex/kx-backup:latest"), /uses latest/],
    ["kx-k8s-images-pinned", CRON, goodCronJob(), (p) => (pod(p).containers[0].image = "ghcr.io/krystalinex/kx-backup"), /is untagged/],
    ["kx-k8s-images-pinned", CRON, goodCronJob(), (p) => (pod(p).containers[0].image = "docker.io/library/postgres:15-alpine"), /uses the moving tag 15-alpine/],
    ["kx-k8s-network-policy", "kubernetes:networking.k8s.io/v1:NetworkPolicy", goodNetworkPolicy(), (p) => delete p.spec.egress[1].ports, /egress rule 1 allows every port/],
    ["kx-k8s-network-policy", "kubernetes:networking.k8s.io/v1:NetworkPolicy", goodNetworkPolicy(), (p) => (p.spec.ingress = [{ from: [{ podSelector: {} }] }]), /must deny all ingress/],
];

const byName = Object.fromEntries([...rules.resourcePolicies].map((p) => [p.name, p]));
const packConfig: Record<string, object> = { "kx-azure-immutability": { requireLocked: true } };

describe("resource policies", () => {
    it.each(cases)("%s passes a good %s and catches one broken field", async (name, type, good, breakIt, message) => {
        const policy = byName[name];
        expect(await violationsOf(policy, resourceArgs(type, structuredClone(good), "r", packConfig[name]))).toEqual([]);
        const bad = structuredClone(good);
        breakIt(bad);
        const found = await violationsOf(policy, resourceArgs(type, bad, "r", packConfig[name]));
        expect(found).toHaveLength(1);
        expect(found[0]).toMatch(message);
    });

    it("never passes an unknown bucket policy: the engine reports it as not run", async () => {
        const found = await violationsOf(rules.s3TlsOnly, resourceArgs("aws:s3/bucketPolicy:BucketPolicy", { bucket: "b", policy: UNKNOWN_STRING }));
        expect(found).toEqual([expect.stringMatching(/^advisory: can't run kx-s3-tls-only during preview: string value at \.policy can't be known during preview/)]);
    });

    it("refuses a subject matched with StringLike, and a role trusting two issuers", async () => {
        const like = goodTrust();
        trustWith((s) => { s.Condition = { StringLike: { [`${issuer}:sub`]: "system:serviceaccount:krystalinex:*" }, StringEquals: { [`${issuer}:aud`]: "sts.amazonaws.com" } }; })(like);
        expect(await violationsOf(rules.iamOidcTrust, resourceArgs("aws:iam/role:Role", like))).toEqual([
            expect.stringMatching(/without StringEquals on .*:sub/),
            expect.stringMatching(/StringLike on .* claims widens the trust: use StringEquals/),
        ]);
        const two = JSON.parse(goodTrust().assumeRolePolicy);
        const aks = "westeurope.oic.prod-aks.azure.com/t/i";
        two.Statement.push({ ...two.Statement[0], Principal: { Federated: `arn:aws:iam::210987654321:oidc-provider/${aks}` }, Condition: { StringEquals: { [`${aks}:aud`]: "sts.amazonaws.com", [`${aks}:sub`]: "system:serviceaccount:krystalinex:kx-backup" } } });
        expect(await violationsOf(rules.iamOidcTrust, resourceArgs("aws:iam/role:Role", { assumeRolePolicy: JSON.stringify(two) }))).toEqual([
            expect.stringMatching(/the role trusts 2 OIDC issuers .*: trust the cluster's one issuer/),
        ]);
    });

    it("accepts an Unlocked policy where the pack config does not require Locked (dev)", async () => {
        const account = goodAccount();
        account.immutableStorageWithVersioning.immutabilityPolicy.state = "Unlocked";
        expect(await violationsOf(rules.azureImmutabilityRequired, resourceArgs("azure-native:storage:StorageAccount", account))).toEqual([]);
    });

    it("refuses deprecated V2 S3 types", async () => {
        expect(await violationsOf(rules.s3NoDeprecatedV2, resourceArgs("aws:s3/bucketVersioningV2:BucketVersioningV2", {}))).toHaveLength(1);
        expect(await violationsOf(rules.s3NoDeprecatedV2, resourceArgs("aws:s3/bucketVersioning:BucketVersioning", {}))).toHaveLength(0);
    });

    it.each([
        [`repo/kx@sha256:${"a".repeat(64)}`, undefined],
        ["registry:5000/kx:1.2.3", undefined],
        ["docker.io/library/postgres:15.14-alpine3.22", undefined],
        ["repo/kx:0.1.0-3f2a9c1b7d0e", undefined],
        ["registry:5000/kx", /untagged/],
        ["postgres:15-alpine", /moving tag 15-alpine/],
        ["postgres:15", /moving tag 15/],
        ["repo/kx:stable", /moving tag stable/],
        [undefined, undefined],
    ])("judges image %s", (image, problem) => {
        const found = rules.imageProblem(image);
        if (problem) {
            expect(found).toMatch(problem);
        } else {
            expect(found).toBeUndefined();
        }
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
        pod(cj).containers[0].args = [component];
        pod(cj).containers[0].env = Object.entries({ PGDATABASE: db, ...env }).map(([name, value]) => ({ name, value }));
        return policyResource(CRON, cj, `${component}-${db}`);
    };
    const lifecycle = (days: number, extra = {}) => policyResource("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", {
        bucket: "b-id",
        rules: [{ id: "expire-kong", status: "Enabled", filter: { prefix: "krystalinex/kong/" }, expiration: { days } }],
    }, "lc", extra);

    it("every database needs a backup and a verify CronJob: from the pack config, password Secrets and jobs, whatever their names", async () => {
        const secret = policyResource("kubernetes:core/v1:Secret", { metadata: { name: "acme-db-goalert", annotations: { "backup.krystalinex.io/database": "goalert" } } }, "s");
        const found = await stackViolationsOf(rules.stackEveryDatabaseCovered, [backupJob("kong", {}), backupJob("kong", {}, "verify"), secret], { databases: ["kong", "ledger"] });
        expect(found).toEqual([
            "database goalert has no backup CronJob", "database goalert has no verify CronJob",
            "database ledger has no backup CronJob", "database ledger has no verify CronJob",
        ]);
    });

    it("knows a job by what it runs, not by its labels", async () => {
        const unlabelled = backupJob("kong", {}, "verify");
        (unlabelled.props as any).metadata.labels = {};
        expect(await stackViolationsOf(rules.stackEveryDatabaseCovered, [backupJob("kong", {}), unlabelled])).toEqual([]);
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
        const props = cj.props as any;
        pod(props).containers[0].env = UNKNOWN_STRING;
        props.metadata.annotations = {
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
        const lock = policyResource("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", { bucket: UNKNOWN_STRING, rule: { defaultRetention: { days: 14 } } }, "lock", { propertyDependencies: { bucket: [bucket] } });
        const lc = policyResource("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", { bucket: UNKNOWN_STRING, rules: [{ id: "expire-kong", expiration: { days: 7 } }] }, "lc", { propertyDependencies: { bucket: [bucket] } });
        expect(await stackViolationsOf(rules.s3LockWithinExpiration, [bucket, lock, lc])).toEqual(["object lock of 14 days outlasts lifecycle rule expire-kong (7 days)"]);
        const otherBucket = policyResource("aws:s3/bucket:Bucket", {}, "b2");
        const otherLc = policyResource("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", { bucket: UNKNOWN_STRING, rules: [{ id: "x", expiration: { days: 7 } }] }, "lc2", { propertyDependencies: { bucket: [otherBucket] } });
        expect(await stackViolationsOf(rules.s3LockWithinExpiration, [bucket, lock, otherBucket, otherLc])).toEqual([]);
    });

    it("a bucket needs its own companions: another bucket's, under the same component, do not count", async () => {
        const parent = policyResource("krystalinex:backup:S3BackupBucket", {}, "kx-s3");
        const main = policyResource("aws:s3/bucket:Bucket", {}, "main", { parent });
        const replica = policyResource("aws:s3/bucket:Bucket", {}, "replica", { parent });
        const companions = ([["aws:s3/bucketVersioning:BucketVersioning", "v"], [SSE, "sse"], ["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab"], ["aws:s3/bucketPolicy:BucketPolicy", "pol"], ["aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lc"]] as const)
            .map(([type, name]) => policyResource(type, { bucket: UNKNOWN_STRING }, name, { parent, propertyDependencies: { bucket: [main] } }));
        const replicaVersioning = policyResource("aws:s3/bucketVersioning:BucketVersioning", { bucket: UNKNOWN_STRING }, "rv", { parent, propertyDependencies: { bucket: [replica] } });
        const found = await stackViolationsOf(rules.stackTargetsComplete, [parent, main, replica, ...companions, replicaVersioning]);
        expect(found).toEqual([
            "bucket replica has no KMS encryption", "bucket replica has no public-access blocks",
            "bucket replica has no bucket policy (TLS only)", "bucket replica has no lifecycle rules",
        ]);
    });

    it("a lock-enabled bucket without a default retention locks nothing", async () => {
        const bucket = policyResource("aws:s3/bucket:Bucket", { bucket: "b", objectLockEnabled: true }, "b");
        const found = await stackViolationsOf(rules.stackTargetsComplete, [bucket]);
        expect(found).toContain("bucket b is lock-enabled without a default retention: nothing is locked");
    });

    it("GOVERNANCE retention needs a bucket policy denying everyone the bypass", async () => {
        const lock = (mode: string) => policyResource("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", { bucket: "b", rule: { defaultRetention: { mode, days: 7 } } }, "lock");
        const tls = { Sid: "DenyInsecureTransport", Effect: "Deny", Principal: "*", Action: "s3:*", Resource: ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], Condition: { Bool: { "aws:SecureTransport": "false" } } };
        const deny = { Sid: "DenyGovernanceBypass", Effect: "Deny", Principal: "*", Action: "s3:BypassGovernanceRetention", Resource: "arn:aws:s3:::b/*" };
        const policy = (...s: object[]) => policyResource("aws:s3/bucketPolicy:BucketPolicy", { bucket: "b", policy: JSON.stringify({ Statement: s }) }, "pol");
        expect(await stackViolationsOf(rules.s3DenyGovernanceBypass, [lock("GOVERNANCE"), policy(tls)])).toEqual([
            "lock: GOVERNANCE retention without a bucket policy denying s3:BypassGovernanceRetention to everyone: anyone allowed to bypass can delete locked backups",
        ]);
        expect(await stackViolationsOf(rules.s3DenyGovernanceBypass, [lock("GOVERNANCE"), policy(tls, deny)])).toEqual([]);
        expect(await stackViolationsOf(rules.s3DenyGovernanceBypass, [lock("COMPLIANCE"), policy(tls)])).toEqual([]);
        // A deny with an exception (a condition) is no deny for whoever meets it.
        expect(await stackViolationsOf(rules.s3DenyGovernanceBypass, [lock("GOVERNANCE"), policy(tls, { ...deny, Condition: { StringNotEquals: { "aws:PrincipalArn": "arn:aws:iam::210987654321:role/admin" } } })])).toHaveLength(1);
    });

    it("the stack trusts one OIDC issuer: an IRSA role and a federated credential naming different ones are refused", async () => {
        const role = policyResource("aws:iam/role:Role", goodTrust(), "role");
        const same = policyResource("azure-native:managedidentity:FederatedIdentityCredential", { issuer: `https://${issuer}/`, subject: "system:serviceaccount:krystalinex:kx-backup" }, "fic");
        expect(await stackViolationsOf(rules.stackOneOidcIssuer, [role, same])).toEqual([]);
        const aks = policyResource("azure-native:managedidentity:FederatedIdentityCredential", { issuer: "https://westeurope.oic.prod-aks.azure.com/t/i/", subject: "system:serviceaccount:krystalinex:kx-backup" }, "aks");
        const found = await stackViolationsOf(rules.stackOneOidcIssuer, [role, aks]);
        expect(found).toHaveLength(2);
        expect(found[1]).toMatch(/^aks trusts westeurope\.oic\.prod-aks\.azure\.com\/t\/i, but the stack trusts 2 issuers/);
    });

    it("every workload's pods are under an egress NetworkPolicy of their namespace", async () => {
        const np = policyResource("kubernetes:networking.k8s.io/v1:NetworkPolicy", goodNetworkPolicy(), "np");
        expect(await stackViolationsOf(rules.stackNetworkPolicyCoverage, [backupJob("kong", {}), np])).toEqual([]);
        const other = backupJob("kong", {});
        (other.props as any).spec.jobTemplate.spec.template.metadata.labels = { app: "something-else" };
        expect(await stackViolationsOf(rules.stackNetworkPolicyCoverage, [other, np])).toEqual(["backup-kong: no NetworkPolicy in krystalinex selects its pods: they may reach anything"]);
    });

    it("says what it could not check when values are unknown at preview", async () => {
        const cj = backupJob("kong", {});
        pod(cj.props as any).containers[0].env = [];
        const bucketPolicy = policyResource("aws:s3/bucketPolicy:BucketPolicy", { bucket: UNKNOWN_STRING, policy: UNKNOWN_STRING }, "pol");
        const found = await stackViolationsOf(rules.stackUnverifiable, [cj, bucketPolicy]);
        expect(found).toEqual([
            "backup-kong: cannot check retention/RPO, unknown: database, retention",
            "pol: policy is unknown at preview: TLS-only and the governance-bypass deny are not checked until the bucket exists",
        ]);
        expect(rules.stackUnverifiable.enforcementLevel).toBe("advisory");
    });
});
