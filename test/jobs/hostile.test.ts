/**
 * A hostile review of the job, the pure parts: each test is a way found to lose or misrestore
 * data, leak a secret or fail on the real service, and fails without its fix. The end-to-end
 * half (real PostgreSQL, the bundled CLI) is hostile.e2e.test.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterEach, describe, expect, it } from "vitest";
import { BackupEntry, describeBackups, groupBackups } from "../../jobs/src/catalog";
import { runPrune } from "../../jobs/src/commands";
import { commitManifest } from "../../jobs/src/commit";
import { dbnameArg, tablePatternMatcher } from "../../jobs/src/db";
import { Logger, withoutRowValues } from "../../jobs/src/log";
import { Manifest, signManifest } from "../../jobs/src/manifest";
import { checkDatabaseName, globalsKey, manifestKey } from "../../jobs/src/naming";
import { headerText, ntfyRequest } from "../../jobs/src/notify";
import { normalizeSchema } from "../../jobs/src/restore/compare";
import { parseDatabaseEntries } from "../../jobs/src/restore/database";
import { splitStatements } from "../../jobs/src/restore/sqlLexer";
import { planPrune } from "../../jobs/src/retention";
import { loadSettings } from "../../jobs/src/settings";
import { assessStatus } from "../../jobs/src/status";
import { LocalTarget, Target } from "../../jobs/src/targets";
import { manifestFor } from "../helpers/manifests";

const NOW = new Date("2026-06-30T12:00:00Z");
const DAY = 86_400_000;

function stamp(at: Date): string {
    return at.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

/** A complete full backup of `kong` taken `age` days before NOW (negative: after). */
function full(age: number, o: { verified?: boolean } = {}): BackupEntry {
    const takenAt = new Date(NOW.getTime() - age * DAY);
    const key = `kong/kong-${stamp(takenAt)}-${Math.random().toString(16).slice(2, 8)}.dump`;
    return {
        database: "kong", family: "dump", key, takenAt, size: 1, kind: "full", complete: true, verified: Boolean(o.verified), anomalous: false,
        objects: [key, `${key}.manifest.json`], manifest: manifestFor(key, "x"),
    };
}

const dirs: string[] = [];
afterEach(() => {
    for (const d of dirs.splice(0)) {
        rmSync(d, { recursive: true, force: true });
    }
});
function tmp(): string {
    const d = mkdtempSync(path.join(os.tmpdir(), "kx-hostile-"));
    dirs.push(d);
    return d;
}

describe("database names pg_dump quotes (kong-db, my db, unicode) restore and verify", () => {
    // What pg_restore --create prints for a database named `kong-db` (PostgreSQL 15).
    const entries = [
        "SET client_encoding = 'UTF8';",
        "CREATE DATABASE \"kong-db\" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8';",
        "ALTER DATABASE \"kong-db\" OWNER TO postgres;",
        "\\unrestrict abc123",
        "\\encoding SQL_ASCII",
        "\\connect -reuse-previous=on \"dbname='kong-db'\"",
        "\\restrict abc123",
        "SET statement_timeout = 0;",
        "",
    ].join("\n");

    it("accepts pg_dump's own \\encoding SQL_ASCII before a \\connect, and reads the database entries", () => {
        const db = parseDatabaseEntries(entries);
        expect(db.source).toBe("kong-db");
        expect(db.create("kx_new_abc123_kong_db")[0]).toMatch(/^CREATE DATABASE "kx_new_abc123_kong_db" WITH TEMPLATE = template0/);
    });

    it("still refuses every other meta-command, an \\encoding that would change how bytes read included", () => {
        expect(() => splitStatements("SELECT 1;\n\\encoding SJIS\nSELECT 2;\n")).toThrow(/line 2: psql meta-command \\encoding refused/);
        expect(() => splitStatements("SELECT 1;\n\\encoding SQL_ASCII\n\\! id\n")).toThrow(/line 3: psql meta-command \\! refused/);
    });

    it("compares schemas without the \\encoding line (the scratch database's name needs none)", () => {
        expect(normalizeSchema(entries, "\"kong-db\"")).not.toContain("\\encoding SQL_ASCII");
    });

    it("measures a name as PostgreSQL does, in bytes: a longer one would be cut to another database's name", () => {
        expect(checkDatabaseName("日本".repeat(10))).toBeUndefined();
        expect(checkDatabaseName("日本".repeat(11))).toMatch(/expected 1 to 63 bytes/);
        expect(checkDatabaseName("a".repeat(63))).toBeUndefined();
    });

    it("gives libpq a database name that holds '=' as a name, never as a connection string", () => {
        expect(dbnameArg("kong")).toBe("kong");
        expect(dbnameArg("my db")).toBe("my db");
        expect(dbnameArg("x=y host=elsewhere")).toBe("dbname='x=y host=elsewhere'");
        expect(dbnameArg("postgresql://u@elsewhere/db")).toBe("dbname='postgresql://u@elsewhere/db'");
        expect(dbnameArg("a'b\\c=d")).toBe("dbname='a\\'b\\\\c=d'");
    });
});

describe("a backup dated in the future (a clock that was wrong) never stands for the newest", () => {
    it("takes no keep-min place: the real backups are not pruned behind it", () => {
        const ahead = full(-300);
        const plan = planPrune([ahead, full(8), full(9)], { retentionDays: 7, keepMin: 1 }, NOW);
        expect(plan.delete).toEqual([]);
        expect(plan.stale).toMatch(/newest good full backup .* is older than 7 days/);
        expect(plan.notes.join("\n")).toMatch(/dated 7200 h ahead of this clock/);
    });

    it("status measures the RPO from the newest backup that is not ahead of the clock, and names the clock", () => {
        const ahead = full(-300);
        const old = full(2);
        const r = assessStatus("kong", [{ target: "local", entries: [ahead, old], verifies: new Map() }], { rpoHours: 24, rtoMinutes: 30, verifyMaxAgeDays: 7 }, NOW);
        expect(r.newestFull?.key).toBe(old.key);
        expect(r.problems.join("\n")).toMatch(/kong: clock: .* is dated 7200 h ahead/);
        expect(r.problems.join("\n")).toMatch(/kong: RPO: newest full backup .* is 2\.0d old \(RPO 24 h\)/);
        expect(r.ok).toBe(false);
    });
});

describe("a restore test recorded by a clock that ran ahead", () => {
    it("does not keep the verify age met: it is named as a clock problem", () => {
        const verified = full(1, { verified: true });
        const future = new Date(NOW.getTime() + 300 * DAY).toISOString();
        const r = assessStatus("kong", [{ target: "local", entries: [verified], verifies: new Map([[verified.key, { finishedAt: future, restoreDurationMs: 1000 }]]) }],
            { rpoHours: 48, rtoMinutes: 30, verifyMaxAgeDays: 7 }, NOW);
        expect(r.newestVerified).toBeUndefined();
        expect(r.problems.join("\n")).toMatch(/kong: clock: the restore test of .* on local is dated 7200 h ahead of this clock/);
        expect(r.problems.join("\n")).toMatch(/verify age: no backup has passed a restore test/);
    });
});

describe("an archive named like a database (archive --name kong) is never one of its backups", () => {
    it("does not count toward the database's keep-min or stale guard: its last good dumps survive", async () => {
        const dir = tmp();
        const target = new LocalTarget(dir);
        const put = (key: string, body: string, m: Manifest) => {
            mkdirSync(path.join(dir, path.dirname(key)), { recursive: true });
            writeFileSync(path.join(dir, key), body);
            writeFileSync(path.join(dir, manifestKey(key)), JSON.stringify(m));
        };
        const now = new Date();
        const at = (days: number) => stamp(new Date(now.getTime() - days * DAY));
        // Database backups have been failing for 40 days; the weekly archive of its config still runs.
        const dump = `kong/kong-${at(40)}-aaaaaa.dump`;
        put(dump, "dump", manifestFor(dump, "dump"));
        for (const [i, days] of [1, 8, 15].entries()) {
            const key = `kong/kong-${at(days)}-bbbbb${i}.tar.gz`;
            put(key, "tgz", manifestFor(key, "tgz", { kind: "kx-backup/archive", format: "tar.gz", container: "tar.gz", counts: { method: "none" } }));
        }
        const reports = await runPrune([target], "kong", { retentionDays: 30, keepMin: 3 }, { dryRun: false, now }, new Logger("json", { write: () => true } as never));
        expect(existsSync(path.join(dir, dump))).toBe(true);
        const dumps = reports.find((r) => r.plan.keep.some((k) => k.key === dump))!;
        expect(dumps.plan.stale).toMatch(/is older than 30 days/);
    });

    it("the archive job's prune applies its retention to archives only, never to the database's dumps", async () => {
        const dir = tmp();
        const now = new Date();
        const at = (days: number) => stamp(new Date(now.getTime() - days * DAY));
        const dumps = [1, 10, 20].map((d, i) => `kong/kong-${at(d)}-aaaaa${i}.dump`);
        const archive = `kong/kong-${at(1)}-bbbbbb.tar.gz`;
        mkdirSync(path.join(dir, "kong"), { recursive: true });
        for (const key of dumps) {
            writeFileSync(path.join(dir, key), "dump");
            writeFileSync(path.join(dir, manifestKey(key)), JSON.stringify(manifestFor(key, "dump")));
        }
        writeFileSync(path.join(dir, archive), "tgz");
        writeFileSync(path.join(dir, manifestKey(archive)), JSON.stringify(manifestFor(archive, "tgz", { kind: "kx-backup/archive", format: "tar.gz", container: "tar.gz" })));
        // Volumes are kept 7 days; the database's dumps 35 (its own CronJob's setting).
        await runPrune([new LocalTarget(dir)], "kong", { retentionDays: 7, keepMin: 1 }, { dryRun: false, now, family: "archive" }, new Logger("json", { write: () => true } as never));
        expect(dumps.every((k) => existsSync(path.join(dir, k)))).toBe(true);
    });

    it("a manifest claiming the other family makes the backup unreadable, never used", async () => {
        const key = "kong/kong-20260601-000000-aaaaaa.dump";
        const entries = groupBackups([{ key, size: 1, lastModified: NOW }, { key: manifestKey(key), size: 1, lastModified: NOW }]);
        const forged = manifestFor(key, "x", { kind: "kx-backup/archive" });
        await describeBackups(entries, async () => JSON.stringify(forged));
        expect(entries[0].kind).toBe("unreadable");
    });
});

describe("a verify record counts only when it is this backup's, passing, and (with a key) signed", () => {
    const key = "kong/kong-20260601-000000-aaaaaa.dump";
    const other = "kong/kong-20260501-000000-bbbbbb.dump";
    const manifest = manifestFor(key, "x");
    const record = (over: Record<string, unknown> = {}): Record<string, unknown> & { signature?: unknown } => ({ kind: "kx-backup/verify", database: "kong", key, sha256: manifest.sha256, ok: true, finishedAt: NOW.toISOString(), ...over });
    const listing = () => groupBackups([key, manifestKey(key), `${key}.verify.json`].map((k) => ({ key: k, size: 1, lastModified: NOW })));
    const describe1 = async (rec: unknown, signingKey?: string) => {
        const entries = listing();
        const signed = signingKey ? signManifest(manifest, signingKey) : manifest;
        await describeBackups(entries, async (k) => JSON.stringify(k.endsWith(".verify.json") ? rec : signed), { signingKey });
        return entries[0];
    };

    it("a record copied from another backup, or a failed one, does not make it verified", async () => {
        expect((await describe1(record())).verified).toBe(true);
        expect((await describe1(record({ key: other }))).verified).toBe(false);
        expect((await describe1(record({ sha256: "0".repeat(64) }))).verified).toBe(false);
        expect((await describe1(record({ ok: false }))).verified).toBe(false);
        expect((await describe1(record({ ok: false }))).problem).toMatch(/not verified: its verify record is not a passing kx-backup verify/);
    });

    it("with BACKUP_SIGNING_KEY, an unsigned or mis-signed record does not count", async () => {
        expect((await describe1(record(), "k1")).problem).toMatch(/verify record is not signed/);
        expect((await describe1(signManifest(record(), "k2"), "k1")).verified).toBe(false);
        expect((await describe1(signManifest(record(), "k1"), "k1")).verified).toBe(true);
    });
});

describe("notifications leave whatever the database is called", () => {
    it("a title outside printable ASCII is sent as an RFC 2047 encoded word", () => {
        const h = ntfyRequest({ command: "backup", ok: false, database: "日本", message: "x" }).headers as Record<string, string>;
        expect(h.Title).toMatch(/^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/);
        expect(Buffer.from(h.Title.slice(10, -2), "base64").toString("utf8")).toBe("KrystalineX backup FAILED: 日本");
        expect(() => new Headers(h)).not.toThrow();
        expect(headerText("KrystalineX backup ok: kong")).toBe("KrystalineX backup ok: kong");
    });
});

describe("secrets in unusual places never reach a log or a notification", () => {
    it("a SAS URL given as the Azure account URL is refused without repeating it", () => {
        const r = loadSettings({ BACKUP_AZURE_CONTAINER: "c", BACKUP_AZURE_ACCOUNT_URL: "https://acct.blob.core.windows.net/?sv=2022-11-02&sp=rwdl&sig=TOPSECRET%2B1" });
        expect(r.ok).toBe(false);
        const text = (r as { errors: string[] }).errors.join("\n");
        expect(text).toMatch(/BACKUP_AZURE_ACCOUNT_URL is not allowed: .*a SAS token or credentials in a URL are secrets/);
        expect(text).not.toContain("TOPSECRET");
    });

    it("an S3 endpoint holding credentials is refused without repeating them", () => {
        const r = loadSettings({ BACKUP_S3_BUCKET: "b", BACKUP_S3_ENDPOINT: "https://AKIAX:SECRETKEY@minio.example" });
        expect((r as { errors: string[] }).errors.join("\n")).toMatch(/BACKUP_S3_ENDPOINT holds credentials/);
        expect((r as { errors: string[] }).errors.join("\n")).not.toContain("SECRETKEY");
    });

    it("redacts pre-signed URL signatures, and secrets a JSON line escapes", () => {
        const lines: string[] = [];
        const log = new Logger("json", { write: (l: string) => lines.push(l) } as never);
        log.addSecrets(['pa"ss\\word']);
        log.error('connect failed for pa"ss\\word via https://a.blob.core.windows.net/c?sv=1&sig=SIGNATURE1 and https://s3/x?X-Amz-Signature=SIGNATURE2&X-Amz-Credential=AKIA%2F');
        expect(lines.join("")).not.toMatch(/pa\\"ss|SIGNATURE1|SIGNATURE2|AKIA/);
    });
});

describe("a failed manifest write removes that copy's globals too", () => {
    it("the target whose manifest failed keeps no orphan globals; the good copy keeps its own", async () => {
        const [a, b] = [tmp(), tmp()];
        const good = new LocalTarget(a);
        const failing: Target = Object.assign(Object.create(new LocalTarget(b)), {
            putSmall: async (key: string, body: string) => {
                if (key.endsWith(".manifest.json")) {
                    throw new Error("EACCES: permission denied");
                }
                return LocalTarget.prototype.putSmall.call(new LocalTarget(b), key, body);
            },
            kind: "s3",
        });
        const key = "kong/kong-20260601-000000-aaaaaa.dump";
        for (const t of [good, failing]) {
            await t.putSmall(globalsKey(key), "CREATE ROLE x;");
        }
        const m = manifestFor(key, "x", { globals: { key: globalsKey(key), size: 14, sha256: "0".repeat(64), roles: ["x"] } });
        await expect(commitManifest([good, failing], m)).rejects.toThrow(/the manifest could not be written to s3/);
        expect(existsSync(path.join(b, globalsKey(key)))).toBe(false);
        expect(readFileSync(path.join(a, globalsKey(key)), "utf8")).toBe("CREATE ROLE x;");
    });
});

describe("backup --table patterns are read as pg_dump reads them, so the rows it dumps are counted", () => {
    it("unquoted names fold to lower case; quoted ones are exact, dots and spaces included", () => {
        const m = tablePatternMatcher(["Orders", '"We.ird"."My Table"', "ledger.*"]);
        expect(m({ schema: "public", name: "orders" })).toBe(true);
        expect(m({ schema: "We.ird", name: "My Table" })).toBe(true);
        expect(m({ schema: "ledger", name: "entries" })).toBe(true);
        expect(m({ schema: "we", name: "ird" })).toBe(false);
        expect(m({ schema: "public", name: "Orders" })).toBe(false);
    });
});

describe("PostgreSQL messages that carry a row's values lose the values", () => {
    it.each([
        ['invalid input syntax for type integer: "alice@customer.example". x is as it was', 'invalid input syntax for type integer: "…". x is as it was'],
        ['invalid input syntax for type integer: "a"b"', 'invalid input syntax for type integer: "…"'],
        ['value "99999999999" is out of range for type integer', 'value "…" is out of range for type integer'],
        ['invalid input value for enum order_side: "sideways"', 'invalid input value for enum order_side: "…"'],
        ['DETAIL:  Key (email)=(alice@x.com) already exists.', 'DETAIL:  Key (email)=(…) already exists.'],
        ['DETAIL:  Failing row contains (1, alice, null).', 'DETAIL:  Failing row contains (…).'],
        ['CONTEXT:  COPY users, line 1, column email: "alice@x"', 'CONTEXT:  COPY users, line 1, column email: "…"'],
        ['relation "users" does not exist', 'relation "users" does not exist'],
    ])("%s", (text, want) => {
        expect(withoutRowValues(text)).toBe(want);
    });

    it("in JSON lines too, and in what is notified (redact)", () => {
        const lines: string[] = [];
        const log = new Logger("json", { write: (l: string) => lines.push(l) } as never);
        log.error('restore failed: invalid input syntax for type integer: "alice@customer.example"', { detail: 'value "4242424242" is out of range for type integer' });
        expect(lines.join("")).not.toMatch(/alice|4242424242/);
        expect(log.redact('COPY users, line 3, column email: "bob@customer.example"')).not.toContain("bob@");
    });
});

describe("prune on a store where a lock or legal hold keeps a dump", () => {
    it("leaves that backup's manifest and globals with it: still complete, retried next run, never 'foreign'", async () => {
        const dir = tmp();
        const local = new LocalTarget(dir);
        const key = `kong/kong-${stamp(new Date(Date.now() - 40 * DAY))}-aaaaaa.dump`;
        const newer = `kong/kong-${stamp(new Date(Date.now() - DAY))}-bbbbbb.dump`;
        for (const k of [key, newer]) {
            mkdirSync(path.join(dir, "kong"), { recursive: true });
            writeFileSync(path.join(dir, k), "dump");
            writeFileSync(path.join(dir, manifestKey(k)), JSON.stringify(manifestFor(k, "dump")));
            writeFileSync(path.join(dir, globalsKey(k)), "CREATE ROLE x;");
        }
        // The old dump is under a legal hold: the store refuses to delete it (Azure says so).
        const held: Target = Object.assign(Object.create(local), {
            delete: async (k: string) => (k === key ? { result: "retained" as const, note: "legal hold" } : local.delete(k)),
        });
        const reports = await runPrune([held], "kong", { retentionDays: 30, keepMin: 1 }, { dryRun: false, now: new Date() }, new Logger("json", { write: () => true } as never));
        expect(reports[0].retained.map((r) => r.key)).toEqual([key]);
        expect(existsSync(path.join(dir, manifestKey(key)))).toBe(true);
        expect(existsSync(path.join(dir, globalsKey(key)))).toBe(true);
        expect(groupBackups(await local.list("kong/")).find((e) => e.key === key)?.kind).toBe("full");
    });
});
