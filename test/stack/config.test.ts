import { describe, expect, it } from "vitest";
import { readFileSync } from "fs";
import { parse } from "yaml";
import {
    bucketNameProblem,
    ConfigError,
    RawConfig,
    storageAccountName,
    validateStackConfig,
} from "../../components/config";
import { ROOT } from "../helpers/pulumiMocks";

const P = "krystalinex-backup:";

function rawFrom(stackFile: string, stack: string): RawConfig {
    const doc = parse(readFileSync(`${ROOT}/${stackFile}`, "utf8")).config as Record<string, unknown>;
    const values = Object.fromEntries(
        Object.entries(doc).filter(([k]) => k.startsWith(P)).map(([k, v]) => [k.slice(P.length), v]),
    );
    return {
        stack,
        values,
        passwordsFor: (values.databases as { name: string }[]).map((d) => d.name),
        hasNtfyUrl: true,
    };
}

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
        expect(c.databases.map((d) => [d.host, d.port, d.user])).toEqual([
            ["app-database", 5433, "exchange"],
            ["kong-database", 5432, "kong"],
            ["goalert-db", 5434, "goalert"],
        ]);
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
        ["IRSA without an OIDC provider", (v) => delete v.kubernetes.irsaOidcProviderArn && delete v.kubernetes.irsaOidcIssuer, /kubernetes\.irsaOidcProviderArn: got nothing; allowed: required when targets\.s3\.access is irsa/],
        ["no target at all", (v) => (v.targets = {}), /targets: got \{\}; allowed: at least one of pvc, s3, azure/],
        ["a replica in the same region", (v) => (v.targets.s3.replicaRegion = "eu-west-1"), /targets\.s3\.replicaRegion: got "eu-west-1"; allowed: an AWS region other than targets\.s3\.region/],
        ["an invalid PVC size", (v) => (v.targets.pvc.size = "lots"), /targets\.pvc\.size: got "lots"; allowed: a Kubernetes quantity/],
        ["no databases", (v) => (v.databases = []), /databases: got \[\]; allowed: a non-empty list of databases/],
        ["a volume without a PVC", (v) => (v.volumes = [{ name: "uploads" }]), /volumes\[0\]\.pvc: got nothing; allowed: an existing PersistentVolumeClaim name/],
        ["a volume named like a database", (v) => (v.volumes = [{ name: "kong", pvc: "p" }]), /volumes\[0\]\.name: got "kong"; allowed: a name used by no database/],
        ["a volume kept zero weeks", (v) => (v.volumes = [{ name: "uploads", pvc: "p", retentionWeeks: 0 }]), /volumes\[0\]\.retentionWeeks: got 0; allowed: weeks of retention/],
        ["a configuration export without an encrypted target", (v) => { v.targets = { pvc: { size: "1Gi" } }; delete v.kubernetes.irsaOidcProviderArn; delete v.kubernetes.irsaOidcIssuer; }, /configBackup: got \{"schedule":"15 \* \* \* \*"\}; allowed: an S3 or Azure target/],
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
        expect(JSON.stringify(raw)).not.toMatch(/password"\s*:/i);
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
