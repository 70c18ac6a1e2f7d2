import { readFileSync } from "fs";
import { describe, expect, it } from "vitest";
import {
    bucketNameProblem,
    ConfigError,
    defaultVerifyMaxAgeDays,
    findPlaceholders,
    RawConfig,
    storageAccountName,
    validateStackConfig,
} from "../../components/config";
import { DB_KEYS } from "../../components/config/databases";
import { ROOT } from "../helpers/pulumiMocks";
import { rawFrom } from "../helpers/stackFiles";

const prod = () => structuredClone(rawFrom("Pulumi.prod.yaml", "prod"));

function problems(raw: RawConfig): string[] {
    try {
        validateStackConfig(raw);
    } catch (e) {
        if (e instanceof ConfigError) {
            return e.problems;
        }
        throw e;
    }
    return [];
}

function mutate(change: (v: any) => void, base = prod()): RawConfig {
    change(base.values);
    return base;
}

describe("stack config validation", () => {
    it("accepts both real stack files", () => {
        expect(problems(rawFrom("Pulumi.prod.yaml", "prod"))).toEqual([]);
        expect(problems(rawFrom("Pulumi.dev.yaml", "dev"))).toEqual([]);
    });

    it("prod carries the runbook's inventory exactly", () => {
        const c = validateStackConfig(prod());
        const inventory = c.databases.map((d) => [d.name, d.schedule, d.retentionDays, d.rpoHours]);
        expect(inventory).toEqual([
            ["crypto_exchange", "0 */6 * * *", 30, 6],
            ["kong", "0 1 * * *", 7, 24],
            ["goalert", "30 1 * * *", 7, 24],
        ]);
        expect(c.databases.map((d) => [d.host, d.port, d.podPort, d.user])).toEqual([
            ["app-database", 5433, 5432, "exchange"],
            ["kong-database", 5432, 5432, "kong"],
            ["goalert-db", 5434, 5432, "goalert"],
        ]);
        // Objectives and the anomaly guard: the runbook's RTO, verify age from the verify schedule.
        expect(c.databases.map((d) => [d.rtoMinutes, d.verifyMaxAgeDays, d.anomalySizeDropPercent, d.anomalyRowsDropPercent, d.anomalyMinRows])).toEqual([
            [30, 2, 50, 50, 1000],
            [30, 8, 50, 50, 1000],
            [30, 8, 50, 50, 1000],
        ]);
        expect(c.targets.azure!.immutability).toEqual({ days: 7, state: "Locked" });
        expect(c.kubernetes.context).toBe("kx-prod");
        expect(c.monitoring).toMatchObject({ prometheusRule: true, dashboard: true, dashboardLabels: { grafana_dashboard: "1" } });
    });

    it("refuses the committed prod file until its placeholders are replaced, naming each key", () => {
        const found = problems(rawFrom("Pulumi.prod.yaml", "prod", { asCommitted: true }));
        expect(found).toEqual([
            expect.stringMatching(/^krystalinex-backup:kubernetes\.oidcIssuer: got "https:\/\/oidc\.eks\.eu-west-1\.amazonaws\.com\/id\/EXAMPLE.*"; allowed: a real value, not an EXAMPLE id from provider documentation/),
            expect.stringMatching(/^krystalinex-backup:image\.repository: got "111122223333\.dkr\.ecr.*"; allowed: a real value, not an AWS documentation account id/),
        ]);
    });

    it.each([
        ["an AWS documentation account", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/kx", "an AWS documentation account id"],
        ["a zero GUID", "https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/x/", "a placeholder GUID"],
        ["an all-ones GUID", "11111111-1111-1111-1111-111111111111", "a placeholder GUID"],
        ["an EXAMPLE id", "AKIAIOSFODNN7EXAMPLE", "an EXAMPLE id"],
        ["a template marker", "<your-account>", "a template marker"],
    ])("recognises %s as a placeholder", (_what, value, what) => {
        expect(findPlaceholders({ a: { b: [value] } })).toEqual([{ key: "a.b[0]", value, what: expect.stringContaining(what) }]);
    });

    it("does not mistake real values for placeholders", () => {
        expect(findPlaceholders({ host: "app-database", issuer: "https://oidc.eks.eu-west-1.amazonaws.com/id/5F1A3B7C9D2E4F60", guid: "3f2b1c4d-0000-4e5f-8a9b-1c2d3e4f5a6b", account: "210987654321" })).toEqual([]);
    });

    it("derives the verify age from the verify schedule: its longest gap, rounded up, plus a day", () => {
        expect(defaultVerifyMaxAgeDays("30 3 * * *")).toBe(2);
        expect(defaultVerifyMaxAgeDays("30 4 * * 0")).toBe(8);
        expect(defaultVerifyMaxAgeDays("0 */12 * * *")).toBe(2);
    });

    it("refuses the S3 target when aws:region is not set", () => {
        expect(problems({ ...prod(), awsRegion: undefined }).join("\n")).toMatch(/targets\.s3\.region: got "eu-west-1"; allowed: the region in aws:region, which is not set: pulumi config set aws:region/);
    });

    it("accepts another registry with its login, and wants nothing more for ECR", () => {
        const other = mutate((v) => { v.image.repository = "ghcr.io/krystalinex/kx-backup"; v.image.registryUsername = "kx-ci"; });
        expect(problems({ ...other, hasRegistryPassword: true })).toEqual([]);
        expect(problems({ ...other, hasRegistryPassword: false }).join("\n")).toMatch(/registryPassword: got nothing; allowed: push credentials/);
        expect(problems(mutate((v) => (v.image.registryUsername = "AWS"))).join("\n")).toMatch(/image\.registryUsername: got "AWS"; allowed: nothing for ECR/);
    });

    // Each case: a broken config, and what its message must say (key, value, what is allowed).
    const cases: [string, (v: any) => void, RegExp][] = [
        ["a wrong type", (v) => (v.databases[0].retentionDays = "30"), /databases\[0\]\.retentionDays: got "30"; allowed: days of retention: a whole number/],
        ["an unknown top-level key", (v) => (v.retention = 5), /krystalinex-backup:retention: got 5; allowed: no such key/],
        ["an unknown nested key", (v) => (v.databases[1].retentionDay = 7), /databases\[1\]\.retentionDay: got 7; allowed: no such key \(known: name, host/],
        ["a 6-field cron", (v) => (v.databases[0].schedule = "0 0 */6 * * *"), /databases\[0\]\.schedule: got "0 0 \*\/6 \* \* \*"; allowed: a 5-field cron expression Kubernetes accepts \(expected 5 fields/],
        ["an out-of-range cron field", (v) => (v.databases[2].verifySchedule = "0 25 * * *"), /databases\[2\]\.verifySchedule: .*hour 25 is outside 0-23/],
        ["retention under a day", (v) => (v.databases[0].retentionDays = 0), /databases\[0\]\.retentionDays: got 0; allowed: days of retention: a whole number from 1/],
        ["object lock longer than retention", (v) => (v.targets.s3.objectLockDays = 8), /targets\.s3\.objectLockDays: got 8; allowed: at most the shortest database retention \(7 days\)/],
        ["immutability longer than retention", (v) => (v.targets.azure.immutabilityDays = 31), /targets\.azure\.immutabilityDays: got 31; allowed: at most the shortest database retention \(7 days\)/],
        ["a schedule less frequent than the RPO", (v) => (v.databases[0].schedule = "0 0 * * *"), /databases\[0\]\.schedule: got "0 0 \* \* \*"; allowed: a schedule whose longest gap \(24 h\) is within the RPO of 6 h/],
        ["duplicate database names", (v) => (v.databases[2].name = "kong"), /databases: got "kong"; allowed: each database name once/],
        ["an invalid database name", (v) => (v.databases[1].name = "Kong-DB"), /databases\[1\]\.name: got "Kong-DB"; allowed: a PostgreSQL name/],
        ["a name too long for a CronJob", (v) => (v.databases[1].name = "k".repeat(40)), /databases\[1\]\.name: got "k{40}"; allowed: a name whose CronJob name "kx-backup-backup-k{40}" is a DNS label of at most 52/],
        ["a prefix that makes an invalid bucket name", (v) => (v.namePrefix = "kx-" + "b".repeat(60)), /namePrefix: got "kx-b+"; allowed: a prefix that, with the stack name, makes a valid S3 bucket name \(3 to 63 characters\)/],
        ["an invalid storage account name", (v) => (v.targets.azure.accountName = "KX_Backup"), /targets\.azure\.accountName: got "KX_Backup"; allowed: 3 to 24 lowercase letters and digits/],
        ["an invalid namespace", (v) => (v.kubernetes.namespace = "Krystal_inex"), /kubernetes\.namespace: got "Krystal_inex"; allowed: a Kubernetes namespace name/],
        ["an image tagged latest", (v) => (v.image = { build: false, ref: "ghcr.io/kx/kx-backup:latest" }), /image\.ref: got "ghcr.io\/kx\/kx-backup:latest"; allowed: an explicit version tag or digest, never latest/],
        ["an untagged image", (v) => (v.image = { build: false, ref: "ghcr.io/kx/kx-backup" }), /image\.ref: got "ghcr.io\/kx\/kx-backup"; allowed: an image reference with a tag or digest/],
        ["building without a repository", (v) => (v.image = { build: true }), /image\.repository: got nothing; allowed: required when image\.build is true/],
        ["IRSA without the cluster's issuer", (v) => delete v.kubernetes.oidcIssuer, /kubernetes\.oidcIssuer: got nothing; allowed: the cluster's OIDC issuer URL: required when targets\.s3\.access is irsa/],
        ["workload identity without the cluster's issuer", (v) => { delete v.kubernetes.oidcIssuer; v.targets.s3.access = "static-keys"; }, /kubernetes\.oidcIssuer: got nothing; allowed: .*required when targets\.azure\.access is workload-identity/],
        ["a second issuer for Azure", (v) => (v.kubernetes.azureOidcIssuer = "https://westeurope.oic.prod-aks.azure.com/tenant/issuer/"), /kubernetes\.azureOidcIssuer: got "https:.*"; allowed: no such key: replaced by kubernetes\.oidcIssuer: a ServiceAccount token has one issuer/],
        ["a separate IRSA provider ARN", (v) => (v.kubernetes.irsaOidcProviderArn = "arn:aws:iam::210987654321:oidc-provider/x"), /kubernetes\.irsaOidcProviderArn: .*no such key: replaced by kubernetes\.oidcIssuer \(the IAM provider ARN is derived/],
        ["an issuer without https", (v) => (v.kubernetes.oidcIssuer = "oidc.eks.eu-west-1.amazonaws.com/id/ABC"), /kubernetes\.oidcIssuer: got "oidc\.eks.*"; allowed: the cluster's OIDC issuer URL \(https:\/\//],
        ["a verify scratch size of zero", (v) => (v.kubernetes.verifyScratchGi = 0), /kubernetes\.verifyScratchGi: got 0; allowed: GiB for the verify pod's restored database and its download/],
        ["no kubeconfig context", (v) => delete v.kubernetes.context, /kubernetes\.context: got nothing; allowed: the kubeconfig context of this stack's cluster \(required: never the ambient current-context\)/],
        ["no pod port for a database", (v) => delete v.databases[0].podPort, /databases\[0\]\.podPort: got nothing; allowed: the port the PostgreSQL server itself listens on \(the Service's targetPort/],
        ["a major the image does not carry", (v) => (v.databases[1].postgresMajor = 14), /databases\[1\]\.postgresMajor: got 14; allowed: a PostgreSQL major the job image carries: 15, 16, 17 \(jobs\/image-pins\.json\)/],
        ["a newer major the image does not carry", (v) => (v.databases[1].postgresMajor = 18), /databases\[1\]\.postgresMajor: got 18; allowed: a PostgreSQL major the job image carries/],
        ["an S3 region other than aws:region", (v) => (v.targets.s3.region = "eu-central-1"), /targets\.s3\.region: got "eu-central-1"; allowed: aws:region \(eu-west-1\)/],
        ["no storage class for the PVC", (v) => delete v.targets.pvc.storageClass, /targets\.pvc\.storageClass: got nothing; allowed: a StorageClass that provides ReadWriteMany .*required/],
        ["a block-storage class for the shared PVC", (v) => (v.targets.pvc.storageClass = "gp3"), /targets\.pvc\.storageClass: got "gp3"; allowed: a StorageClass that provides ReadWriteMany .*gp3 is ReadWriteOnce block storage/],
        ["a lock state without immutability", (v) => { delete v.targets.azure.immutabilityDays; }, /targets\.azure\.immutabilityState: got "Locked"; allowed: only together with targets\.azure\.immutabilityDays/],
        ["an unknown lock state", (v) => (v.targets.azure.immutabilityState = "Disabled"), /targets\.azure\.immutabilityState: got "Disabled"; allowed: Unlocked \| Locked/],
        ["a verify age shorter than the verify schedule", (v) => (v.databases[1].verifyMaxAgeDays = 3), /databases\[1\]\.verifyMaxAgeDays: got 3; allowed: at least the verify schedule's longest gap \(7 days\)/],
        ["a schedule too frequent for a run to finish", (v) => { v.databases[0].schedule = "*/10 * * * *"; }, /databases\[0\]\.schedule: got "\*\/10 \* \* \* \*"; allowed: a schedule that leaves a run time to finish: it runs every 10 min/],
        ["an RTO of zero", (v) => (v.databases[0].rtoMinutes = 0), /databases\[0\]\.rtoMinutes: got 0; allowed: minutes a restore of this database may take/],
        ["an anomaly threshold over 100 %", (v) => (v.databases[0].anomalySizeDropPercent = 150), /databases\[0\]\.anomalySizeDropPercent: got 150; allowed: percent: a whole number from 1 to 100/],
        ["alerts without a Pushgateway", (v) => delete v.monitoring.pushgatewayUrl && delete v.monitoring.pushgatewayPodPort, /monitoring\.prometheusRule: got true; allowed: true only with monitoring\.pushgatewayUrl/],
        ["a Pushgateway without its pod port", (v) => delete v.monitoring.pushgatewayPodPort, /monitoring\.pushgatewayPodPort: got nothing; allowed: the port the Pushgateway pod listens on/],
        ["a rule label that is not a label", (v) => (v.monitoring.ruleLabels = { release: "kube prometheus" }), /monitoring\.ruleLabels\.release: got "kube prometheus"; allowed: a Kubernetes label/],
        ["an ECR repository in another region", (v) => (v.image.repository = "210987654321.dkr.ecr.us-east-1.amazonaws.com/kx-backup"), /image\.repository: got ".*us-east-1.*"; allowed: an ECR repository in aws:region \(eu-west-1\)/],
        ["another registry without credentials", (v) => (v.image.repository = "ghcr.io/krystalinex/kx-backup"), /image\.registryUsername: got nothing; allowed: push credentials for a registry other than ECR/],
        ["no target at all", (v) => (v.targets = {}), /targets: got \{\}; allowed: at least one of pvc, s3, azure/],
        ["a replica in the same region", (v) => (v.targets.s3.replicaRegion = "eu-west-1"), /targets\.s3\.replicaRegion: got "eu-west-1"; allowed: an AWS region other than targets\.s3\.region/],
        ["an invalid PVC size", (v) => (v.targets.pvc.size = "lots"), /targets\.pvc\.size: got "lots"; allowed: a Kubernetes quantity/],
        ["no databases", (v) => (v.databases = []), /databases: got \[\]; allowed: a non-empty list of databases/],
        ["a volume without a PVC", (v) => (v.volumes = [{ name: "uploads" }]), /volumes\[0\]\.pvc: got nothing; allowed: an existing PersistentVolumeClaim name/],
        ["a volume named like a database", (v) => (v.volumes = [{ name: "kong", pvc: "p" }]), /volumes\[0\]\.name: got "kong"; allowed: a name used by no database/],
        ["a volume kept zero weeks", (v) => (v.volumes = [{ name: "uploads", pvc: "p", retentionWeeks: 0 }]), /volumes\[0\]\.retentionWeeks: got 0; allowed: weeks of retention/],
        ["a configuration export without an encrypted target", (v) => { v.targets = { pvc: { size: "1Gi", storageClass: "efs-sc" } }; }, /configBackup: got \{"schedule":"15 \* \* \* \*"\}; allowed: an S3 or Azure target/],
    ];

    it.each(cases)("refuses %s, naming key, value and what is allowed", (_what, change, message) => {
        const found = problems(mutate(change));
        expect(found.join("\n")).toMatch(message);
    });

    it("reports every problem at once", () => {
        const found = problems(mutate((v) => {
            v.databases[0].retentionDays = 0;
            v.databases[1].schedule = "every day";
        }));
        expect(found.length).toBe(2);
    });

    it("defaults volumes to the runbook's weekly schedule and 4 weeks", () => {
        const c = validateStackConfig(mutate((v) => (v.volumes = [{ name: "uploads", pvc: "kx-uploads" }])));
        expect(c.volumes).toEqual([{ name: "uploads", pvc: "kx-uploads", schedule: "0 3 * * 0", retentionWeeks: 4, keepMin: 2 }]);
        expect(c.configBackup).toEqual({ schedule: "15 * * * *", retentionDays: undefined });
    });

    it("asks for a missing password by name, with the command to set it", () => {
        const raw = { ...prod(), passwordsFor: ["crypto_exchange", "kong"] };
        expect(problems(raw).join("\n")).toMatch(/dbPasswords\.goalert: got nothing; allowed: a secret: pulumi config set --secret --path 'dbPasswords\.goalert'/);
    });

    it("asks for the ntfy URL secret when notifications are on", () => {
        expect(problems({ ...prod(), hasNtfyUrl: false }).join("\n")).toMatch(/ntfyUrl: got nothing; allowed: a secret when notifications\.ntfy is true/);
    });

    it("never echoes a password: validation sees only which databases have one", () => {
        const raw = prod();
        expect(JSON.stringify(raw)).not.toMatch(/password"\s*:\s*"/i);
    });
});

describe("the README's key table", () => {
    const readme = readFileSync(`${ROOT}/README.md`, "utf8");
    const row = (key: string) => readme.split("\n").find((l) => l.startsWith(`| \`${key}\``));

    it("documents every databases[] key in its row", () => {
        for (const key of DB_KEYS) {
            expect(row("databases[]"), key).toContain(`\`${key}\``);
        }
    });

    it.each(["kubernetes.context", "kubernetes.oidcIssuer", "kubeconfig", "signingKey", "image.registryUsername", "monitoring", "targets.pvc", "targets.azure"])("has a row for %s", (key) => {
        expect(row(key)).toBeDefined();
    });
});

describe("derived names", () => {
    it("derives a valid, stable, per-stack storage account name", () => {
        const a = storageAccountName("kx-backup", "prod");
        expect(a).toMatch(/^[a-z0-9]{3,24}$/);
        expect(storageAccountName("kx-backup", "prod")).toBe(a);
        expect(storageAccountName("kx-backup", "dev")).not.toBe(a);
        expect(storageAccountName("a-very-long-name-prefix-indeed", "production-eu-west")).toMatch(/^[a-z0-9]{3,24}$/);
        expect(storageAccountName("x", "y")).toMatch(/^[a-z0-9]{3,24}$/);
    });

    it("knows S3's bucket naming rules", () => {
        expect(bucketNameProblem("kx-backup-prod-abcdefg")).toBeUndefined();
        expect(bucketNameProblem("ab")).toMatch(/3 to 63/);
        expect(bucketNameProblem("Kx_Backup")).toMatch(/lowercase/);
        expect(bucketNameProblem("xn--kx")).toMatch(/reserved/);
    });
});
