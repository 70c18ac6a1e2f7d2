/** Volume and configuration archives as the prod stack renders them (with one volume added). */
import { beforeAll, describe, expect, it } from "vitest";
import { loadSettings } from "../../jobs/src/settings";
import { runStack, StackRun } from "../helpers/pulumiMocks";
import { envToProcessEnv } from "./stackSuite";

let run: StackRun;
const cron = (name: string) => run.one("kubernetes:batch/v1:CronJob", (r) => r.inputs.metadata.name === name);
const pod = (name: string) => cron(name).inputs.spec.jobTemplate.spec.template.spec;

beforeAll(async () => {
    run = await runStack("Pulumi.prod.yaml", { stack: "prod", overrides: { volumes: [{ name: "kyc-documents", pvc: "kx-kyc-documents" }] } });
}, 60_000);

describe("volume archive CronJob", () => {
    it("archives the PVC, mounted read-only, weekly by default", () => {
        const spec = cron("kx-backup-archive-kyc-documents").inputs.spec;
        expect(spec.schedule).toBe("0 3 * * 0");
        expect(spec.concurrencyPolicy).toBe("Forbid");
        const p = pod("kx-backup-archive-kyc-documents");
        expect(p.containers[0].args).toEqual(["archive", "--name", "kyc-documents", "--path", "/data"]);
        expect(p.volumes).toContainEqual({ name: "source", persistentVolumeClaim: { claimName: "kx-kyc-documents", readOnly: true } });
        expect(p.containers[0].volumeMounts).toContainEqual({ name: "source", mountPath: "/data", readOnly: true });
        expect(p.automountServiceAccountToken).toBe(false);
    });

    it("keeps 4 weeks: in the job's settings and in the lifecycle rules of both clouds", () => {
        const loaded = loadSettings(envToProcessEnv(pod("kx-backup-archive-kyc-documents").containers[0].env));
        if (!loaded.ok) {
            throw new Error(loaded.errors.join("\n"));
        }
        expect(loaded.settings.retentionDays).toBe(28);
        expect(loaded.settings.pgDatabase).toBeUndefined();
        const s3 = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", (r) => !r.name.includes("replica"));
        expect(s3.inputs.rules.find((r: any) => r.filter.prefix === "krystalinex/kyc-documents/").expiration.days).toBe(28);
        const az = run.one("azure-native:storage:ManagementPolicy");
        expect(az.inputs.policy.rules.find((r: any) => r.definition.filters.prefixMatch.includes("backups/krystalinex/kyc-documents/")).definition.actions.baseBlob.delete.daysAfterModificationGreaterThan).toBe(28);
    });
});

describe("configuration export CronJob", () => {
    it("exports the namespace through the API, only on change, never to the local PVC, never pruned", () => {
        const p = pod("kx-backup-archive-k8s-config");
        expect(cron("kx-backup-archive-k8s-config").inputs.spec.schedule).toBe("15 * * * *");
        expect(p.containers[0].args).toEqual(["archive", "--name", "k8s-config", "--kubernetes-namespace", "krystalinex", "--if-changed"]);
        expect(p.serviceAccountName).toBe("kx-backup-config");
        expect(p.automountServiceAccountToken).toBe(true);
        const loaded = loadSettings(envToProcessEnv(p.containers[0].env));
        expect(loaded.ok).toBe(true);
        if (loaded.ok) {
            expect(loaded.settings.localDir).toBeUndefined();
            expect(loaded.settings.s3Bucket).toBeDefined();
            expect(loaded.settings.pruneAfterBackup).toBe(false);
        }
        expect(p.volumes.some((v: any) => v.persistentVolumeClaim)).toBe(false);
    });

    it("is kept indefinitely: S3 only aborts its abandoned uploads and expires deleted versions; Azure deletes nothing", () => {
        const s3 = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", (r) => !r.name.includes("replica"));
        const rule = s3.inputs.rules.find((r: any) => r.filter.prefix === "krystalinex/k8s-config/");
        expect(rule).toEqual({
            id: "clean-up-k8s-config",
            status: "Enabled",
            filter: { prefix: "krystalinex/k8s-config/" },
            noncurrentVersionExpiration: { noncurrentDays: 7 },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
        });
        const az = run.one("azure-native:storage:ManagementPolicy");
        expect(JSON.stringify(az.inputs.policy.rules)).not.toContain("k8s-config");
    });

    it("reads ConfigMaps and Secrets of its namespace, and nothing else", () => {
        const role = run.one("kubernetes:rbac.authorization.k8s.io/v1:Role");
        expect(role.inputs.metadata.namespace).toBe("krystalinex");
        expect(role.inputs.rules).toEqual([{ apiGroups: [""], resources: ["configmaps", "secrets"], verbs: ["get", "list"] }]);
        expect(run.byType("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")).toHaveLength(0);
        const binding = run.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding");
        expect(binding.inputs.subjects).toEqual([{ kind: "ServiceAccount", name: "kx-backup-config", namespace: "krystalinex" }]);
        expect(binding.inputs.roleRef).toMatchObject({ kind: "Role" });
    });

    it("reaches the clouds with its own identities, trusted for its own ServiceAccount only, through the cluster's one issuer", () => {
        const trust = (id: string) => JSON.parse(run.one("aws:iam/role:Role", (r) => r.name === `kx-s3-${id}-role`).inputs.assumeRolePolicy);
        const issuer = "oidc.eks.eu-west-1.amazonaws.com/id/5F1A3B7C9D2E4F60718293A4B5C6D7E8";
        for (const [id, sa] of [["jobs", "kx-backup"], ["config", "kx-backup-config"]]) {
            expect(trust(id).Statement).toEqual([{
                Effect: "Allow",
                Principal: { Federated: `arn:aws:iam::210987654321:oidc-provider/${issuer}` },
                Action: "sts:AssumeRoleWithWebIdentity",
                Condition: { StringEquals: { [`${issuer}:aud`]: "sts.amazonaws.com", [`${issuer}:sub`]: `system:serviceaccount:krystalinex:${sa}` } },
            }]);
        }
        const federations = run.byType("azure-native:managedidentity:FederatedIdentityCredential");
        expect(federations.map((f) => [f.inputs.resourceName, f.inputs.subject]).sort()).toEqual([
            ["kx-azure-config-identity", "system:serviceaccount:krystalinex:kx-backup-config"],
            ["kx-azure-jobs-identity", "system:serviceaccount:krystalinex:kx-backup"],
        ]);
        // One issuer for both clouds: the one the IAM trust names.
        expect(new Set(federations.map((f) => f.inputs.issuer))).toEqual(new Set([`https://${issuer}`]));
    });

    it("creates the federated credentials one after another: Azure refuses concurrent writes (409)", () => {
        const federations = run.byType("azure-native:managedidentity:FederatedIdentityCredential");
        expect(federations).toHaveLength(2);
        expect(federations[0].opts.dependencies).not.toContain(federations[1].opts.urn);
        expect(federations[1].opts.dependencies).toContain(federations[0].opts.urn);
    });

    it("limits each Azure identity to its own folders with a role condition", () => {
        const assignment = (id: string) => run.one("azure-native:authorization:RoleAssignment", (r) => r.name === `kx-azure-${id}-blob-contributor`).inputs;
        const jobs = assignment("jobs");
        expect(jobs.conditionVersion).toBe("2.0");
        for (const folder of ["crypto_exchange", "kong", "goalert", "kyc-documents"]) {
            expect(jobs.condition).toContain(`StringStartsWith 'krystalinex/${folder}/'`);
        }
        expect(jobs.condition).not.toContain("k8s-config");
        const exportOnly = assignment("config");
        expect(exportOnly.condition.match(/StringStartsWith '([^']+)'/g)).toEqual([
            "StringStartsWith 'krystalinex/k8s-config/'",
            "StringStartsWith 'krystalinex/k8s-config/'",
        ]);
    });

    it("runs the configuration export as its own ServiceAccount with its own cloud identity", () => {
        const p = pod("kx-backup-archive-k8s-config");
        expect(p.serviceAccountName).toBe("kx-backup-config");
        const sa = run.one("kubernetes:core/v1:ServiceAccount", (r) => r.inputs.metadata.name === "kx-backup-config").inputs.metadata.annotations;
        expect(sa["eks.amazonaws.com/role-arn"]).toMatch(/role\/kx-s3-config-role$/);
        expect(sa["azure.workload.identity/client-id"]).toBe("client-id-of-kx-azure-config-identity");
        // The volume archive, like the database jobs, runs as the jobs' identity.
        expect(pod("kx-backup-archive-kyc-documents").serviceAccountName).toBe("kx-backup");
    });
});
