/**
 * What a stack deploys, asserted for a real stack file under Pulumi mocks. Each stack file gets
 * its own test file (vitest isolates them), calling this suite with what differs by environment.
 * Per-database numbers are compared with the stack file's own validated config.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { DatabaseConfig, StackConfig } from "../../components/config";
import { minIntervalMinutes } from "../../components/cron";
import { IMAGE_PINS } from "../../components/image/pins";
import { loadSettings } from "../../jobs/src/settings";
import { plainStrings, RecordedResource, runStack, StackRun, unwrapSecret } from "../helpers/pulumiMocks";
import { validatedFrom } from "../helpers/stackFiles";

export interface StackExpectations {
    stackFile: string;
    stack: string;
    /** Spot checks written out by hand: the schedule and retention of each database. */
    databases: { name: string; schedule: string; retentionDays: number }[];
    worm: boolean;
    replica: boolean;
    irsa: boolean;
    builtImage: boolean;
    /** The PrometheusRule and the Grafana dashboard are deployed. */
    alerts: boolean;
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

export function podSpec(cronJob: RecordedResource) {
    return cronJob.inputs.spec.jobTemplate.spec.template.spec;
}

export function settingsOf(cronJob: RecordedResource) {
    const loaded = loadSettings(envToProcessEnv(podSpec(cronJob).containers[0].env));
    if (!loaded.ok) {
        throw new Error(loaded.errors.join("\n"));
    }
    return loaded.settings;
}

const ref = (secret: string, key: string) => `https://secret.invalid/${secret}/${key}`;

export function stackSuite(x: StackExpectations) {
    let run: StackRun;
    let config: StackConfig;
    const cronJob = (name: string) => run.one("kubernetes:batch/v1:CronJob", (r) => r.inputs.metadata.name === name);

    beforeAll(async () => {
        config = validatedFrom(x.stackFile, x.stack);
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

    describe.each(x.databases)("database $name", (expected) => {
        const backupName = `kx-backup-backup-${expected.name.replace(/_/g, "-")}`;
        const verifyName = `kx-backup-verify-${expected.name.replace(/_/g, "-")}`;
        const db = (): DatabaseConfig => config.databases.find((d) => d.name === expected.name)!;

        it("has a backup CronJob on its schedule that never overlaps", () => {
            const spec = cronJob(backupName).inputs.spec;
            expect(spec.schedule).toBe(expected.schedule);
            expect(spec.timeZone).toBe("Etc/UTC");
            expect(spec.concurrencyPolicy).toBe("Forbid");
            expect(spec.successfulJobsHistoryLimit).toBe(3);
            expect(spec.failedJobsHistoryLimit).toBe(3);
            expect(spec.jobTemplate.spec.backoffLimit).toBeGreaterThanOrEqual(0);
            expect(spec.jobTemplate.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
            expect(podSpec(cronJob(backupName)).containers[0].args).toEqual(["backup"]);
        });

        it("stops every run, including its clean-up, before the next scheduled one", () => {
            for (const name of [backupName, verifyName]) {
                const spec = cronJob(name).inputs.spec;
                const pod = podSpec(cronJob(name));
                expect(pod.terminationGracePeriodSeconds).toBe(120);
                const occupied = spec.startingDeadlineSeconds + spec.jobTemplate.spec.activeDeadlineSeconds + pod.terminationGracePeriodSeconds;
                expect(spec.startingDeadlineSeconds).toBeGreaterThan(0);
                expect(spec.jobTemplate.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(600);
                expect(occupied).toBeLessThan(minIntervalMinutes(spec.schedule) * 60);
            }
        });

        it("renders backup env that the job's own settings loader accepts, with this database's settings and thresholds", () => {
            const s = settingsOf(cronJob(backupName));
            expect(s.pgDatabase).toBe(expected.name);
            expect(s.retentionDays).toBe(expected.retentionDays);
            expect(s.localDir).toBe("/backups");
            expect(s.s3Bucket).toBe(run.exports.bucketName);
            expect(s.azureContainer).toBe("backups");
            expect(s.pgPassword).toBe(ref(`kx-backup-db-${expected.name.replace(/_/g, "-")}`, "password"));
            expect(s.ntfyUrl).toBe(ref("kx-backup-notify", "ntfy-url"));
            expect(s.signingKey).toBe(ref("kx-backup-signing", "signing-key"));
            expect(s.logFormat).toBe("json");
            expect(s.trigger).toBe("scheduled");
            expect(s.pushgatewayUrl).toBe(config.monitoring.pushgatewayUrl);
            expect([s.rpoHours, s.rtoMinutes, s.verifyMaxAgeDays, s.anomalySizeDrop, s.anomalyRowsDrop, s.anomalyMinRows]).toEqual([
                db().rpoHours, db().rtoMinutes, db().verifyMaxAgeDays, db().anomalySizeDropPercent, db().anomalyRowsDropPercent, db().anomalyMinRows,
            ]);
        });

        it("verifies every configured target: the verify pod has each target's settings and credentials", () => {
            const verify = cronJob(verifyName);
            const spec = podSpec(verify);
            expect(spec.containers[0].args).toEqual(["verify"]);
            const s = settingsOf(verify);
            expect([s.localDir, s.s3Bucket, s.azureContainer]).toEqual(["/backups", run.exports.bucketName, "backups"]);
            if (x.irsa) {
                expect(s.azureAccountUrl).toMatch(/^https:\/\/.*\.blob\.core\.windows\.net$/);
                expect(spec.serviceAccountName).toBe("kx-backup");
            } else {
                expect(s.awsAccessKeyId).toBe(ref("kx-backup-aws", "access-key-id"));
                expect(s.azureConnectionString).toBe(ref("kx-backup-azure", "connection-string"));
            }
            expect(s.signingKey).toBe(ref("kx-backup-signing", "signing-key"));
            expect(s.trigger).toBe("manual");
            expect(s.verifyPgHost).toBe("127.0.0.1");
            expect(s.workDir).toBe("/work");
            expect(s.rtoMinutes).toBe(db().rtoMinutes);
        });

        it("restores into a pinned sidecar PostgreSQL of the database's major, with its disk requested", () => {
            const spec = podSpec(cronJob(verifyName));
            const sidecar = spec.initContainers[0];
            expect(sidecar.restartPolicy).toBe("Always");
            expect(sidecar.image).toBe(IMAGE_PINS.postgres.find((p) => p.major === db().postgresMajor)!.server);
            expect(sidecar.image).toMatch(/:\d+\.\d+-alpine\d/);
            const sizes = Object.fromEntries(spec.volumes.filter((v: any) => v.emptyDir?.sizeLimit).map((v: any) => [v.name, v.emptyDir.sizeLimit]));
            expect(sizes["scratch-data"]).toBe(`${config.kubernetes.verifyScratchGi}Gi`);
            expect(sidecar.resources.requests["ephemeral-storage"]).toBe(sizes["scratch-data"]);
            const gi = (q: string) => Number(q.replace(/Gi$/, ""));
            expect(gi(spec.containers[0].resources.requests["ephemeral-storage"])).toBe(gi(sizes.work) + gi(sizes.tmp));
        });

        it("annotates its CronJobs with the facts the policy pack checks at preview", () => {
            for (const name of [backupName, verifyName]) {
                expect(cronJob(name).inputs.metadata.annotations).toEqual({
                    "backup.krystalinex.io/database": expected.name,
                    "backup.krystalinex.io/retention-days": String(expected.retentionDays),
                    "backup.krystalinex.io/s3-lifecycle-prefix": `krystalinex/${expected.name}/`,
                    "backup.krystalinex.io/azure-lifecycle-prefix": `backups/krystalinex/${expected.name}/`,
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

        it("expires its S3 prefix at its retention", () => {
            const lifecycle = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", (r) => !r.name.includes("replica"));
            const rule = lifecycle.inputs.rules.find((r: { filter: { prefix: string } }) => r.filter.prefix === `krystalinex/${expected.name}/`);
            expect(rule.expiration.days).toBe(expected.retentionDays);
            expect(rule.noncurrentVersionExpiration.noncurrentDays).toBe(config.targets.s3!.noncurrentVersionDays);
            expect(rule.abortIncompleteMultipartUpload.daysAfterInitiation).toBe(1);
        });

        it("deletes its Azure prefix at its retention, and keeps a deleted version noncurrentVersionDays after that", () => {
            const policy = run.one("azure-native:storage:ManagementPolicy");
            const rule = policy.inputs.policy.rules.find((r: any) => r.definition.filters.prefixMatch.includes(`backups/krystalinex/${expected.name}/`));
            expect(rule.definition.actions.baseBlob.delete.daysAfterModificationGreaterThan).toBe(expected.retentionDays);
            // Azure ages a version from when it was written: retention + noncurrent days.
            expect(rule.definition.actions.version.delete.daysAfterCreationGreaterThan).toBe(expected.retentionDays + config.targets.azure!.noncurrentVersionDays);
        });

        it("reads its password from its own Secret, annotated with its database", () => {
            const secret = run.one("kubernetes:core/v1:Secret", (r) => r.inputs.metadata.name === `kx-backup-db-${expected.name.replace(/_/g, "-")}`);
            expect(secret.inputs.metadata.annotations).toEqual({ "backup.krystalinex.io/database": expected.name });
            const data = unwrapSecret(secret.inputs.stringData);
            expect(data.secret).toBe(true);
            expect(Object.keys(data.value)).toEqual(["password"]);
            const env = podSpec(cronJob(backupName)).containers[0].env as EnvEntry[];
            const pw = env.find((e) => e.name === "PGPASSWORD")!;
            expect(pw.value).toBeUndefined();
            expect(pw.valueFrom!.secretKeyRef.name).toBe(secret.inputs.metadata.name);
        });
    });

    it("renders the manifest signing key into every job from one Secret, never as a literal", () => {
        const jobs = run.byType("kubernetes:batch/v1:CronJob");
        expect(jobs.length).toBeGreaterThanOrEqual(2 * x.databases.length);
        for (const job of jobs) {
            const entry = (podSpec(job).containers[0].env as EnvEntry[]).find((e) => e.name === "BACKUP_SIGNING_KEY");
            expect(entry, job.inputs.metadata.name).toEqual({ name: "BACKUP_SIGNING_KEY", valueFrom: { secretKeyRef: { name: "kx-backup-signing", key: "signing-key" } } });
        }
        const secret = run.one("kubernetes:core/v1:Secret", (r) => r.inputs.metadata.name === "kx-backup-signing");
        const data = unwrapSecret(secret.inputs.stringData);
        expect(data.secret).toBe(true);
        // Not given as config here: generated once, 64 characters, and kept in the state.
        const generated = run.one("random:index/randomPassword:RandomPassword");
        expect(generated.inputs).toMatchObject({ length: 64, special: false });
        expect(generated.opts).toMatchObject({ protect: true, retainOnDelete: true });
        expect(unwrapSecret(data.value["signing-key"]).value).toBe("mock-generated-signing-key-Vx55");
    });

    it("encrypts the bucket with a rotating customer-managed KMS key", () => {
        const sse = run.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", (r) => !r.name.includes("replica"));
        expect(sse.inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm).toBe("aws:kms");
        expect(sse.inputs.rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId).toMatch(/^arn:aws:kms:/);
        for (const key of run.byType("aws:kms/key:Key")) {
            expect(key.inputs.enableKeyRotation).toBe(true);
        }
    });

    it(x.worm ? "versions the bucket, blocks public access, denies plain HTTP and any governance bypass" : "versions the bucket, blocks public access and denies plain HTTP", () => {
        for (const v of run.byType("aws:s3/bucketVersioning:BucketVersioning")) {
            expect(v.inputs.versioningConfiguration.status).toBe("Enabled");
        }
        for (const b of run.byType("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")) {
            expect(b.inputs).toMatchObject({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
        }
        const policies = run.byType("aws:s3/bucketPolicy:BucketPolicy");
        expect(policies).toHaveLength(x.replica ? 2 : 1);
        for (const p of policies) {
            const statements = JSON.parse(p.inputs.policy).Statement;
            expect(statements).toContainEqual(expect.objectContaining({ Effect: "Deny", Principal: "*", Condition: { Bool: { "aws:SecureTransport": "false" } } }));
            const bypass = statements.filter((s: any) => s.Effect === "Deny" && s.Action === "s3:BypassGovernanceRetention" && s.Principal === "*");
            expect(bypass).toHaveLength(x.worm ? 1 : 0);
        }
    });

    it("scopes each identity's IAM policy to its own folders: the database jobs can never read the configuration export", () => {
        const policy = (id: string) => JSON.parse(run.one("aws:iam/policy:Policy", (r) => r.name === `kx-s3-${id}-access`).inputs.policy);
        const jobs = policy("jobs");
        const objects = jobs.Statement.find((s: any) => s.Sid === "ReadWriteOwnFolders");
        expect(objects.Resource.map((r: string) => r.replace(/^arn:aws:s3:::[^/]+\//, "")).sort()).toEqual(config.databases.map((d) => `krystalinex/${d.name}/*`).sort());
        expect(objects.Action).not.toContain("s3:DeleteObjectVersion");
        const deny = jobs.Statement.find((s: any) => s.Sid === "DenyForeignFolders");
        expect(deny.Effect).toBe("Deny");
        expect(deny.Resource).toEqual([expect.stringMatching(/\/krystalinex\/k8s-config\/\*$/)]);
        expect(deny.Action).toEqual(expect.arrayContaining(["s3:GetObject", "s3:GetObjectVersion"]));
        const exportPolicy = policy("config");
        expect(exportPolicy.Statement.find((s: any) => s.Sid === "ReadWriteOwnFolders").Resource).toEqual([expect.stringMatching(/\/krystalinex\/k8s-config\/\*$/)]);
        for (const p of [jobs, exportPolicy]) {
            expect(JSON.stringify(p)).not.toContain('"s3:*"');
        }
    });

    it("hardens the Azure account and protects what holds backups from destroy and replacement", () => {
        const account = run.one("azure-native:storage:StorageAccount");
        expect(account.inputs).toMatchObject({
            kind: "StorageV2",
            enableHttpsTrafficOnly: true,
            minimumTlsVersion: "TLS1_2",
            allowBlobPublicAccess: false,
            allowSharedKeyAccess: !x.irsa,
            encryption: { requireInfrastructureEncryption: true },
        });
        expect(account.inputs.accountName).toMatch(/^[a-z0-9]{3,24}$/);
        const service = run.one("azure-native:storage:BlobServiceProperties");
        expect(service.inputs).toMatchObject({ isVersioningEnabled: true, deleteRetentionPolicy: { enabled: true }, containerDeleteRetentionPolicy: { enabled: true } });
        expect(run.one("azure-native:storage:BlobContainer").inputs.publicAccess).toBe("None");
        const kept = [
            "azure-native:resources:ResourceGroup", "azure-native:storage:StorageAccount", "azure-native:storage:BlobContainer",
            "aws:s3/bucket:Bucket", "aws:kms/key:Key",
        ].flatMap((t) => run.byType(t));
        expect(kept).toHaveLength(3 + (x.replica ? 4 : 2));
        for (const r of kept) {
            expect(r.opts, `${r.type} ${r.name}`).toMatchObject({ protect: true, retainOnDelete: true });
        }
    });

    it(x.worm ? "locks objects (WORM) on S3 and Azure" : "does not lock objects", () => {
        const lock = run.byType("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration");
        const account = run.one("azure-native:storage:StorageAccount");
        if (x.worm) {
            expect(lock).toHaveLength(x.replica ? 2 : 1);
            for (const l of lock) {
                expect(l.inputs.rule.defaultRetention).toEqual({ mode: config.targets.s3!.objectLock!.mode, days: config.targets.s3!.objectLock!.days });
            }
            expect(account.inputs.immutableStorageWithVersioning).toEqual({
                enabled: true,
                immutabilityPolicy: {
                    immutabilityPeriodSinceCreationInDays: config.targets.azure!.immutability!.days,
                    state: config.targets.azure!.immutability!.state,
                    allowProtectedAppendWrites: false,
                },
            });
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

    it(x.irsa ? "gives each identity an IRSA role and an Azure identity, and no static keys" : "gives each identity static keys through its own Secret (dev option)", () => {
        const sa = (name: string) => run.one("kubernetes:core/v1:ServiceAccount", (r) => r.inputs.metadata.name === name);
        if (x.irsa) {
            expect(run.byType("aws:iam/accessKey:AccessKey")).toHaveLength(0);
            for (const [name, id] of [["kx-backup", "jobs"], ["kx-backup-config", "config"]]) {
                const annotations = sa(name).inputs.metadata.annotations;
                expect(annotations["eks.amazonaws.com/role-arn"]).toBe(`arn:aws:iam::210987654321:role/kx-s3-${id}-role`);
                expect(annotations["azure.workload.identity/client-id"]).toBe(`client-id-of-kx-azure-${id}-identity`);
            }
        } else {
            expect(run.byType("aws:iam/accessKey:AccessKey")).toHaveLength(2);
            for (const name of ["kx-backup-aws", "kx-backup-config-aws"]) {
                const secret = run.one("kubernetes:core/v1:Secret", (r) => r.inputs.metadata.name === name);
                const data = unwrapSecret(secret.inputs.stringData);
                expect(data.secret).toBe(true);
                expect(Object.keys(data.value).sort()).toEqual(["access-key-id", "secret-access-key"]);
            }
            const exportEnv = settingsOf(cronJob("kx-backup-archive-k8s-config"));
            expect(exportEnv.awsAccessKeyId).toBe(ref("kx-backup-config-aws", "access-key-id"));
        }
    });

    it(x.builtImage ? "builds the job image from the pins, pushes a content-derived tag with registry credentials, deploys by digest" : "uses the configured image reference", () => {
        const images = run.byType("docker:index/image:Image");
        const cron = run.byType("kubernetes:batch/v1:CronJob")[0];
        if (x.builtImage) {
            expect(images).toHaveLength(1);
            const image = images[0].inputs;
            expect(image.build.dockerfile).toMatch(/jobs\/Dockerfile$/);
            expect(image.build.args.RUNTIME_IMAGE).toBe(IMAGE_PINS.runtimeImage);
            expect(image.imageName).toMatch(new RegExp(`^${config.image.repository}:${config.image.tag}-[0-9a-f]{12}$`));
            // The push token is a secret: the whole registry block arrives marked secret.
            const registry = unwrapSecret(image.registry);
            expect(registry.secret).toBe(true);
            expect(registry.value).toEqual({ server: config.image.repository!.split("/")[0], username: "AWS", password: "mock-ecr-token-Hn27" });
            expect(podSpec(cron).containers[0].image).toMatch(/@sha256:[0-9a-f]{64}$/);
        } else {
            expect(images).toHaveLength(0);
            expect(podSpec(cron).containers[0].image).toBe(config.image.ref);
        }
    });

    it(x.alerts ? "deploys the alert rules and the dashboard" : "deploys no alert rules and no dashboard (metrics are still pushed)", () => {
        expect(run.byType("kubernetes:monitoring.coreos.com/v1:PrometheusRule")).toHaveLength(x.alerts ? 1 : 0);
        expect(run.byType("kubernetes:core/v1:ConfigMap")).toHaveLength(x.alerts ? 1 : 0);
        expect(config.monitoring.pushgatewayUrl).toMatch(/^http/);
    });

    it("provisions a ReadWriteMany backup volume on the configured class", () => {
        const pvc = run.one("kubernetes:core/v1:PersistentVolumeClaim");
        expect(pvc.inputs.spec.accessModes).toEqual(["ReadWriteMany"]);
        expect(pvc.inputs.spec.storageClassName).toBe(config.targets.pvc!.storageClass);
        expect(pvc.inputs.spec.resources.requests.storage).toMatch(/Gi$/);
    });

    it("opens egress on the database and Pushgateway pods' ports (after Service translation), DNS and HTTPS", () => {
        const np = run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy");
        expect(np.inputs.spec.policyTypes).toEqual(["Ingress", "Egress"]);
        expect(np.inputs.spec.ingress).toEqual([]);
        const ports = [...new Set(np.inputs.spec.egress.flatMap((e: any) => e.ports.map((p: any) => p.port)))].sort((a: any, b: any) => a - b);
        expect(ports).toEqual([53, 443, 5432, 6443, 9091]);
        // The Services' own ports (5433, 5434) are never what a NetworkPolicy sees.
        expect(ports).not.toContain(5433);
        const push = np.inputs.spec.egress.find((e: any) => e.ports.some((p: any) => p.port === 9091));
        expect(push.to).toEqual([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } }, podSelector: {} }]);
    });

    it("deploys every Kubernetes resource through this stack's own provider, on its configured context", () => {
        const providers = run.byType("pulumi:providers:kubernetes");
        expect(providers).toHaveLength(1);
        expect(providers[0].inputs.context).toBe(config.kubernetes.context);
        const k8sResources = run.resources.filter((r) => r.type.startsWith("kubernetes:"));
        expect(k8sResources.length).toBeGreaterThan(10);
        for (const r of k8sResources) {
            expect(r.opts.provider, `${r.type} ${r.name}`).toBe(`${providers[0].opts.urn}::${providers[0].name}-id`);
        }
    });

    it("puts no secret value anywhere outside a value marked secret", () => {
        expect(run.secretValues.length).toBeGreaterThan(5);
        for (const r of run.resources) {
            const text = plainStrings(r.inputs).join("\n");
            for (const secret of run.secretValues) {
                expect(text, `${r.type} ${r.name} holds a secret in clear`).not.toContain(secret);
            }
        }
        // And the Secrets do hold them (so the search above could have found them).
        const secrets = JSON.stringify(run.byType("kubernetes:core/v1:Secret").map((s) => s.inputs));
        for (const pw of run.secretValues.filter((s) => s.startsWith("pw-"))) {
            expect(secrets).toContain(pw);
        }
    });
}
