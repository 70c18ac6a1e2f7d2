import { describe, expect, it } from "vitest";
import { describeSettings, loadSettings, renderEnv, secretValues, SETTINGS } from "../../jobs/src/settings";

const base = { PGHOST: "db", PGDATABASE: "kong", BACKUP_LOCAL_DIR: "/backups" };

function errors(env: Record<string, string>): string[] {
    const r = loadSettings(env);
    return r.ok ? [] : r.errors;
}

describe("job settings", () => {
    it("loads a minimal environment with documented defaults", () => {
        const r = loadSettings(base);
        expect(r.ok).toBe(true);
        if (r.ok) {
            expect(r.settings.pgPort).toBe(5432);
            expect(r.settings.retentionDays).toBe(30);
            expect(r.settings.keepMin).toBe(3);
            expect(r.settings.format).toBe("custom");
            expect(r.settings.s3Prefix).toBe("krystalinex");
        }
    });

    it.each([
        [{ BACKUP_LOCAL_DIR: "" }, /no backup target: set at least one of BACKUP_LOCAL_DIR, BACKUP_S3_BUCKET, BACKUP_AZURE_CONTAINER/],
        [{ BACKUP_RETENTION_DAYS: "0" }, /BACKUP_RETENTION_DAYS="0" is not allowed: expected a whole number from 1 up/],
        [{ BACKUP_RETENTION_DAYS: "ten" }, /BACKUP_RETENTION_DAYS="ten" is not allowed/],
        [{ PGPORT: "70000" }, /PGPORT="70000" is not allowed: expected a whole number from 1 to 65535/],
        [{ BACKUP_S3_FORCE_PATH_STYLE: "maybe" }, /BACKUP_S3_FORCE_PATH_STYLE="maybe" is not allowed: expected true or false/],
        [{ BACKUP_FORMAT: "tar" }, /BACKUP_FORMAT="tar" is not allowed: expected one of custom, directory, plain/],
        [{ BACKUP_AZURE_CONTAINER: "backups" }, /Azure has no credentials/],
        [{ AWS_ACCESS_KEY_ID: "AKIA" }, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together/],
        [{ BACKUP_JOBS: "4" }, /BACKUP_JOBS=4 needs BACKUP_FORMAT=directory/],
        [{ BACKUP_S3_ENDPOINT: "localhost:9000" }, /BACKUP_S3_ENDPOINT="localhost:9000" is not allowed/],
    ])("refuses %o with a clear message", (change, message) => {
        expect(errors({ ...base, ...change }).join("\n")).toMatch(message);
    });

    it("reports every invalid setting, one message each", () => {
        expect(errors({ ...base, PGPORT: "x", BACKUP_KEEP_MIN: "-1", BACKUP_FORMAT: "zip" })).toHaveLength(3);
    });

    it("lets flags override the environment", () => {
        const r = loadSettings(base, { pgDatabase: "goalert" });
        expect(r.ok && r.settings.pgDatabase).toBe("goalert");
    });

    it("renders plain settings as literals and secrets only as secretKeyRef", () => {
        const env = renderEnv(
            { pgHost: "app-database", pgPort: 5433, retentionDays: 30, s3ForcePathStyle: false },
            { pgPassword: { name: "kx-db", key: "password" } },
        );
        expect(env).toEqual([
            { name: "PGHOST", value: "app-database" },
            { name: "PGPORT", value: "5433" },
            { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: "kx-db", key: "password" } } },
            { name: "BACKUP_S3_FORCE_PATH_STYLE", value: "false" },
            { name: "BACKUP_RETENTION_DAYS", value: "30" },
        ]);
    });

    it("refuses to render a secret as a literal", () => {
        expect(() => renderEnv({ pgPassword: "hunter2" } as never)).toThrow(/PGPASSWORD is secret: render it from a Secret/);
    });

    it("round-trips every plain setting through render and load", () => {
        const plain = {
            pgHost: "h", pgPort: 6543, pgUser: "u", pgDatabase: "d", localDir: "/b", s3Bucket: "bkt",
            s3Prefix: "p", s3ForcePathStyle: true, retentionDays: 9, keepMin: 2, format: "directory" as const, jobs: 4,
        };
        const env = Object.fromEntries(renderEnv(plain).map((e) => [e.name, "value" in e ? e.value : ""]));
        const r = loadSettings(env);
        expect(r.ok).toBe(true);
        if (r.ok) {
            expect(r.settings).toMatchObject(plain);
        }
    });

    it("lists the secret values to redact, and documents every variable", () => {
        const r = loadSettings({ ...base, PGPASSWORD: "s3cr3t", BACKUP_NTFY_URL: "https://ntfy.sh/x" });
        expect(r.ok && secretValues(r.settings).sort()).toEqual(["https://ntfy.sh/x", "s3cr3t"]);
        expect(describeSettings()).toHaveLength(Object.keys(SETTINGS).length);
        expect(describeSettings().every((d) => d.doc.length > 0)).toBe(true);
    });
});
