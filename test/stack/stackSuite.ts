/**
 * What a stack deploys, asserted for a real stack file under Pulumi mocks. Each stack file gets
 * its own test file (vitest isolates them), calling this suite with what differs by environment.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadSettings } from "../../jobs/src/settings";
import { RecordedResource, runStack, StackRun, stackConfig, unwrapSecret } from "../helpers/pulumiMocks";

interface DbExpect {
    name: string;
    schedule: string;
    retentionDays: number;
}

export interface StackExpectations {
    stackFile: string;
    stack: string;
    databases: DbExpect[];
    worm: boolean;
    replica: boolean;
    irsa: boolean;
    builtImage: boolean;
}

type EnvEntry = { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } };

/**
 * Turns rendered container env back into a process environment, each secretKeyRef as a
 * recognisable stand-in (URL-shaped, since some secrets are URLs the loader validates).
 */
export function envToProcessEnv(env: EnvEntry[]): Record<string, string> {
    return Object.fromEntries(
        env.map((e) => [e.name, e.value ?? `https://secret.invalid/${e.valueFrom!.secretKeyRef.name}/${e.valueFrom!.secretKeyRef.key}`]),
    );
}

function podSpec(cronJob: RecordedResource) {
    return cronJob.inputs.spec.jobTemplate.spec.template.spec;
}

export function stackSuite(x: StackExpectations) {
    let run: StackRun;
    const cronJob = (name: string) =>
        run.one("kubernetes:batch/v1:CronJob", (r) => r.inputs.metadata.name === name);

    beforeAll(async () => {
        run = await runStack(x.stackFile, { stack: x.stack });
    }, 60_000);

    it("makes no provider call the mocks do not expect", () => {
        expect(run.unexpectedCalls).toEqual([]);
    });

    it("exports the names operators need", () => {
        expect(run.exports.bucketName).toMatch(/^kx-backup-/);
        expect(run.exports.storageAccountName).toMatch(/^[a-z0-9]{3,24}$/);
        expect(run.exports.containerName).toBe("backups");
        expect(Object.keys(run.exports.backupCronJobs as object).sort()).toEqual(x.databases.map((d) => d.name).sort());
        expect(run.exports.imageRef).toBeTypeOf("string");
    });

    describe.each(x.databases)("database $name", (db) => {
        const backupName = `kx-backup-backup-${db.name.replace(/_/g, "-")}`;
        const verifyName = `kx-backup-verify-${db.name.replace(/_/g, "-")}`;

        it("has a backup CronJob on its schedule that never overlaps", () => {
            const spec = cronJob(backupName).inputs.spec;
            expect(spec.schedule).toBe(db.schedule);
            expect(spec.timeZone).toBe("Etc/UTC");
            expect(spec.concurrencyPolicy).toBe("Forbid");
            expect(spec.successfulJobsHistoryLimit).toBe(3);
            expect(spec.failedJobsHistoryLimit).toBe(3);
            expect(spec.startingDeadlineSeconds).toBeGreaterThan(0);
            expect(spec.jobTemplate.spec.backoffLimit).toBeGreaterThanOrEqual(0);
            expect(spec.jobTemplate.spec.activeDeadlineSeconds).toBeGreaterThan(0);
            expect(spec.jobTemplate.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
            expect(podSpec(cronJob(backupName)).containers[0].args).toEqual(["backup"]);
        });

        it("renders env that the job's own settings loader accepts, with this database's retention", () => {
            const env = podSpec(cronJob(backupName)).containers[0].env as EnvEntry[];
            const loaded = loadSettings(envToProcessEnv(env));
            if (!loaded.ok) {
                throw new Error(loaded.errors.join("\n"));
            }
            expect(loaded.settings.pgDatabase).toBe(db.name);
            expect(loaded.settings.retentionDays).toBe(db.retentionDays);
            expect(loaded.settings.localDir).toBe("/backups");
            expect(loaded.settings.s3Bucket).toBe(run.exports.bucketName);
            expect(loaded.settings.azureContainer).toBe("backups");
            expect(loaded.settings.pgPassword).toMatch(/^https:\/\/secret\.invalid\/kx-backup-db-/);
            expect(loaded.settings.ntfyUrl).toBe("https://secret.invalid/kx-backup-notify/ntfy-url");
            expect(loaded.settings.logFormat).toBe("json");
        });

        it("annotates its CronJobs with the facts the policy pack checks at preview", () => {
            for (const name of [backupName, verifyName]) {
                expect(cronJob(name).inputs.metadata.annotations).toEqual({
                    "backup.krystalinex.io/database": db.name,
                    "backup.krystalinex.io/retention-days": String(db.retentionDays),
                    "backup.krystalinex.io/s3-lifecycle-prefix": `krystalinex/${db.name}/`,
                    "backup.krystalinex.io/azure-lifecycle-prefix": `backups/krystalinex/${db.name}/`,
                });
            }
        });

        it("mounts the backup PVC at /backups and a scratch /tmp", () => {
            const spec = podSpec(cronJob(backupName));
            const mounts = spec.containers[0].volumeMounts.map((m: { mountPath: string }) => m.mountPath);
            expect(mounts).toEqual(expect.arrayContaining(["/backups", "/tmp"]));
            const pvc = spec.volumes.find((v: { persistentVolumeClaim?: unknown }) => v.persistentVolumeClaim);
            expect(pvc.persistentVolumeClaim.claimName).toBe("kx-backup-pvc");
        });

        it("runs as a restricted pod", () => {
            for (const name of [backupName, verifyName]) {
                const spec = podSpec(cronJob(name));
                expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
                for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
                    expect(c.securityContext).toMatchObject({
                        allowPrivilegeEscalation: false,
                        readOnlyRootFilesystem: true,
                        runAsNonRoot: true,
                        capabilities: { drop: ["ALL"] },
                    });
                    expect(c.resources.limits.memory).toBeDefined();
                    expect(c.resources.requests.cpu).toBeDefined();
                }
                expect(spec.serviceAccountName).toBe("kx-backup");
            }
        });

        it("verifies on its own schedule by restoring into a sidecar PostgreSQL, never production", () => {
            const verify = cronJob(verifyName);
            expect(verify.inputs.spec.concurrencyPolicy).toBe("Forbid");
            const spec = podSpec(verify);
            expect(spec.containers[0].args).toEqual(["verify"]);
            const sidecar = spec.initContainers[0];
            expect(sidecar.restartPolicy).toBe("Always");
            expect(sidecar.image).toBe("docker.io/library/postgres:15-alpine");
            const env = envToProcessEnv(spec.containers[0].env);
            const loaded = loadSettings(env);
            expect(loaded.ok && loaded.settings.verifyPgHost).toBe("127.0.0.1");
            expect(loaded.ok && loaded.settings.workDir).toBe("/work");
        });

        it("expires its S3 prefix at its retention", () => {
            const lifecycle = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", (r) => !r.name.includes("replica"));
            const rule = lifecycle.inputs.rules.find((r: { filter: { prefix: string } }) => r.filter.prefix === `krystalinex/${db.name}/`);
            expect(rule.expiration.days).toBe(db.retentionDays);
            expect(rule.noncurrentVersionExpiration.noncurrentDays).toBeGreaterThan(0);
            expect(rule.abortIncompleteMultipartUpload.daysAfterInitiation).toBe(1);
        });

        it("deletes its Azure prefix at its retention", () => {
            const policy = run.one("azure-native:storage:ManagementPolicy");
            const rule = policy.inputs.policy.rules.find((r: any) =>
                r.definition.filters.prefixMatch.includes(`backups/krystalinex/${db.name}/`),
            );
            expect(rule.definition.actions.baseBlob.delete.daysAfterModificationGreaterThan).toBe(db.retentionDays);
            expect(rule.definition.actions.version.delete.daysAfterCreationGreaterThan).toBeGreaterThan(0);
        });

        it("reads its password from its own Secret", () => {
            const secret = run.one("kubernetes:core/v1:Secret", (r) => r.inputs.metadata.name === `kx-backup-db-${db.name.replace(/_/g, "-")}`);
            const data = unwrapSecret(secret.inputs.stringData);
            expect(data.secret).toBe(true);
            expect(Object.keys(data.value)).toEqual(["password"]);
            const env = podSpec(cronJob(backupName)).containers[0].env as EnvEntry[];
            const pw = env.find((e) => e.name === "PGPASSWORD")!;
            expect(pw.value).toBeUndefined();
            expect(pw.valueFrom!.secretKeyRef.name).toBe(secret.inputs.metadata.name);
        });
    });

    it("encrypts the bucket with a rotating customer-managed KMS key", () => {
        const sse = run.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", (r) => !r.name.includes("replica"));
        expect(sse.inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm).toBe("aws:kms");
        expect(sse.inputs.rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId).toMatch(/^arn:aws:kms:/);
        for (const key of run.byType("aws:kms/key:Key")) {
            expect(key.inputs.enableKeyRotation).toBe(true);
        }
    });

    it("versions the bucket, blocks public access and denies plain HTTP", () => {
        for (const v of run.byType("aws:s3/bucketVersioning:BucketVersioning")) {
            expect(v.inputs.versioningConfiguration.status).toBe("Enabled");
        }
        for (const b of run.byType("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")) {
            expect(b.inputs).toMatchObject({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
        }
        const policy = JSON.parse(run.one("aws:s3/bucketPolicy:BucketPolicy", (r) => !r.name.includes("replica")).inputs.policy);
        expect(policy.Statement).toContainEqual(expect.objectContaining({
            Effect: "Deny",
            Condition: { Bool: { "aws:SecureTransport": "false" } },
        }));
    });

    it("scopes the job's IAM policy to the backup prefix and the key", () => {
        const policy = JSON.parse(run.one("aws:iam/policy:Policy").inputs.policy);
        const objects = policy.Statement.find((s: any) => s.Sid === "ReadWriteBackupObjects");
        expect(objects.Resource).toEqual([expect.stringMatching(/^arn:aws:s3:::kx-backup-.*\/krystalinex\/\*$/)]);
        expect(JSON.stringify(policy)).not.toContain('"s3:*"');
    });

    it("hardens the Azure account: HTTPS only, TLS 1.2, no public blobs, infrastructure encryption", () => {
        const account = run.one("azure-native:storage:StorageAccount");
        expect(account.inputs).toMatchObject({
            kind: "StorageV2",
            enableHttpsTrafficOnly: true,
            minimumTlsVersion: "TLS1_2",
            allowBlobPublicAccess: false,
            encryption: { requireInfrastructureEncryption: true },
        });
        expect(account.inputs.accountName).toMatch(/^[a-z0-9]{3,24}$/);
        const service = run.one("azure-native:storage:BlobServiceProperties");
        expect(service.inputs).toMatchObject({
            isVersioningEnabled: true,
            deleteRetentionPolicy: { enabled: true },
            containerDeleteRetentionPolicy: { enabled: true },
        });
        expect(run.one("azure-native:storage:BlobContainer").inputs.publicAccess).toBe("None");
    });

    it(x.worm ? "locks objects (WORM) on S3 and Azure" : "does not lock objects", () => {
        const lock = run.byType("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration");
        const account = run.one("azure-native:storage:StorageAccount");
        if (x.worm) {
            expect(lock).toHaveLength(1);
            expect(lock[0].inputs.rule.defaultRetention.days).toBeGreaterThan(0);
            expect(account.inputs.immutableStorageWithVersioning.immutabilityPolicy.immutabilityPeriodSinceCreationInDays).toBeGreaterThan(0);
            expect(run.one("azure-native:storage:BlobContainer").inputs.immutableStorageWithVersioning.enabled).toBe(true);
        } else {
            expect(lock).toHaveLength(0);
            expect(account.inputs.immutableStorageWithVersioning).toBeUndefined();
        }
    });

    it(x.replica ? "replicates to a second region" : "has no replica", () => {
        const replication = run.byType("aws:s3/bucketReplicationConfig:BucketReplicationConfig");
        expect(replication).toHaveLength(x.replica ? 1 : 0);
        if (x.replica) {
            expect(run.byType("pulumi:providers:aws")[0].inputs.region).not.toBe("eu-west-1");
        }
    });

    it(x.irsa ? "gives the job an IRSA role, and no static keys" : "gives the job static keys through a Secret (dev option)", () => {
        const sa = run.one("kubernetes:core/v1:ServiceAccount", (r) => r.inputs.metadata.name === "kx-backup");
        if (x.irsa) {
            expect(sa.inputs.metadata.annotations["eks.amazonaws.com/role-arn"]).toMatch(/^arn:aws:iam::/);
            expect(sa.inputs.metadata.annotations["azure.workload.identity/client-id"]).toBeDefined();
            expect(run.byType("aws:iam/accessKey:AccessKey")).toHaveLength(0);
            const trust = JSON.parse(run.one("aws:iam/role:Role", (r) => r.name.includes("job-role")).inputs.assumeRolePolicy);
            expect(JSON.stringify(trust)).toContain("system:serviceaccount:krystalinex:kx-backup");
        } else {
            expect(run.byType("aws:iam/accessKey:AccessKey")).toHaveLength(1);
            const secret = run.one("kubernetes:core/v1:Secret", (r) => r.inputs.metadata.name === "kx-backup-aws");
            const data = unwrapSecret(secret.inputs.stringData);
            expect(data.secret).toBe(true);
            expect(Object.keys(data.value).sort()).toEqual(["access-key-id", "secret-access-key"]);
        }
    });

    it(x.builtImage ? "builds the job image and deploys it by digest" : "uses the configured image reference", () => {
        const images = run.byType("docker:index/image:Image");
        const cron = run.byType("kubernetes:batch/v1:CronJob")[0];
        if (x.builtImage) {
            expect(images).toHaveLength(1);
            expect(images[0].inputs.build.dockerfile).toMatch(/jobs\/Dockerfile$/);
            expect(podSpec(cron).containers[0].image).toMatch(/@sha256:[0-9a-f]{64}$/);
        } else {
            expect(images).toHaveLength(0);
            const ref = JSON.parse(stackConfig(x.stackFile)["krystalinex-backup:image"]).ref;
            expect(podSpec(cron).containers[0].image).toBe(ref);
        }
    });

    it("provisions a ReadWriteOnce backup volume", () => {
        const pvc = run.one("kubernetes:core/v1:PersistentVolumeClaim");
        expect(pvc.inputs.spec.accessModes).toEqual(["ReadWriteOnce"]);
        expect(pvc.inputs.spec.resources.requests.storage).toMatch(/Gi$/);
    });

    it("limits backup pods' egress to databases, DNS and HTTPS", () => {
        const np = run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy");
        expect(np.inputs.spec.policyTypes).toEqual(["Ingress", "Egress"]);
        const ports = np.inputs.spec.egress.flatMap((e: any) => e.ports.map((p: any) => p.port)).sort((a: number, b: number) => a - b);
        expect(ports).toEqual(expect.arrayContaining([53, 443, 5432, 5433, 5434]));
    });

    it("puts no secret value in any resource's inputs except Kubernetes Secrets", () => {
        expect(run.secretValues.length).toBeGreaterThan(0);
        for (const r of run.resources) {
            if (r.type === "kubernetes:core/v1:Secret") {
                continue;
            }
            const text = JSON.stringify(r.inputs);
            for (const secret of run.secretValues) {
                expect(text, `${r.type} ${r.name} contains a secret`).not.toContain(secret);
            }
        }
        // And the Secrets do hold them (so the search above could have found them).
        const secrets = JSON.stringify(run.byType("kubernetes:core/v1:Secret").map((s) => s.inputs));
        for (const pw of run.secretValues.filter((s) => s.startsWith("pw-"))) {
            expect(secrets).toContain(pw);
        }
    });
}
