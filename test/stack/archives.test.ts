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

    it("is kept indefinitely: no lifecycle rule for its prefix", () => {
        const s3 = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", (r) => !r.name.includes("replica"));
        expect(s3.inputs.rules.map((r: any) => r.filter.prefix)).not.toContain("krystalinex/k8s-config/");
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

    it("reaches the clouds with the same identity: IRSA trust and Azure federation for both ServiceAccounts", () => {
        const trust = run.one("aws:iam/role:Role", (r) => r.name.includes("job-role")).inputs.assumeRolePolicy;
        expect(trust).toContain("system:serviceaccount:krystalinex:kx-backup\"");
        expect(trust).toContain("system:serviceaccount:krystalinex:kx-backup-config");
        const subjects = run.byType("azure-native:managedidentity:FederatedIdentityCredential").map((f) => f.inputs.subject).sort();
        expect(subjects).toEqual(["system:serviceaccount:krystalinex:kx-backup", "system:serviceaccount:krystalinex:kx-backup-config"]);
    });
});
