/**
 * verify and restore end to end: the bundled CLI, a source PostgreSQL holding a runbook-shaped
 * crypto_exchange, and a separate verify server (standing in for the pod's sidecar).
 */
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_BIN, PgCluster, startPostgres } from "../../jobs/dev/services";
import { cryptoExchangeSql } from "../../jobs/dev/sample";
import { countsOf, logLines, runCli } from "../helpers/cli";

let source: PgCluster;
let verifier: PgCluster;
let work: string;
const DB = "crypto_exchange";

beforeAll(async () => {
    [source, verifier] = await Promise.all([startPostgres(), startPostgres()]);
    work = mkdtempSync(path.join(os.tmpdir(), "kx-verify-"));
    source.psql("postgres", `CREATE DATABASE ${DB}`);
    source.psql(DB, cryptoExchangeSql(300));
}, 120_000);

afterAll(() => {
    source?.remove();
    verifier?.remove();
    rmSync(work, { recursive: true, force: true });
});

function env(dir: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
        ...source.env(DB),
        BACKUP_LOCAL_DIR: path.join(work, dir),
        VERIFY_PGHOST: "127.0.0.1",
        VERIFY_PGPORT: String(verifier.port),
        VERIFY_PGUSER: "postgres",
        VERIFY_PGPASSWORD: verifier.password,
        ...extra,
    };
}

/** Backs up crypto_exchange into its own folder and returns the dump's path. */
async function freshBackup(dir: string): Promise<{ dump: string; manifest: string }> {
    const r = await runCli(["backup", "--no-prune"], env(dir));
    expect(r.code, r.stderr).toBe(0);
    const folder = path.join(work, dir, DB);
    const name = readdirSync(folder).filter((f) => f.endsWith(".dump")).sort().at(-1)!;
    return { dump: path.join(folder, name), manifest: path.join(folder, `${name}.manifest.json`) };
}

function scratchDatabases(): string {
    return verifier.psql("postgres", "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'kx_verify%'");
}

function failure(stderr: string): string {
    return logLines(stderr).filter((l) => l.level === "error").map((l) => l.msg).join("\n");
}

describe("verify", () => {
    it("passes on a good backup, records .verify.json with the measured restore time, and lists it as verified", async () => {
        const { dump } = await freshBackup("good");
        const r = await runCli(["verify", "--json"], env("good"));
        expect(r.code, r.stderr).toBe(0);
        const report = JSON.parse(r.stdout);
        expect(report.ok).toBe(true);
        expect(report.steps.map((s: any) => [s.step, s.ok])).toEqual([
            ["exists", true], ["copies", true], ["checksum", true], ["readable", true], ["roles", true], ["restore", true],
            ["counts", true], ["properties", true], ["schema", true], ["sequences", true], ["large-objects", true],
            ["integrity", true], ["connect", true], ["cleanup", true],
        ]);
        expect(report.checks).toEqual({ ran: ["counts", "properties", "schema", "sequences", "large-objects", "integrity"], skipped: [] });
        expect(report.target).toBe("local");
        expect(report.steps.find((s: any) => s.step === "integrity").detail).toMatch(/no negative wallet balance, no trade referring to a missing order/);
        expect(report.restoreDurationMs).toBeGreaterThan(0);
        // The measured RTO is the whole restore: at least the copy's fetch and pg_restore, which are inside it.
        const took = (step: string) => report.steps.find((s: any) => s.step === step).durationMs;
        expect(report.restoreEndToEndMs).toBeGreaterThanOrEqual(took("checksum") + took("restore"));
        expect(report.restoreEndToEndMs).toBeLessThanOrEqual(Date.parse(report.finishedAt) - Date.parse(report.startedAt));
        const recorded = JSON.parse(readFileSync(`${dump}.verify.json`, "utf8"));
        expect(recorded.restoreDurationMs).toBe(report.restoreDurationMs);
        expect(recorded.restoreEndToEndMs).toBe(report.restoreEndToEndMs);
        const list = JSON.parse((await runCli(["list", "--json"], env("good"))).stdout);
        expect(list[0].status).toBe("verified");
        expect(scratchDatabases()).toBe("");
    });

    it("the measured RTO counts making the roles a restore onto a fresh cluster needs", async () => {
        // 1500 roles granted on one table: creating them on the scratch server takes longer than
        // reading the small dump and comparing it, so a measure without them would fall short.
        source.psql("postgres", "CREATE DATABASE many_roles");
        source.psql("many_roles", "CREATE TABLE t (id int); INSERT INTO t VALUES (1); " +
            "DO $$ BEGIN FOR i IN 1..1500 LOOP EXECUTE format('CREATE ROLE kx_rto_r%s NOLOGIN', i); EXECUTE format('GRANT SELECT ON t TO kx_rto_r%s', i); END LOOP; END $$;");
        try {
            const e = { ...env("roles"), PGDATABASE: "many_roles" };
            const b = await runCli(["backup", "--no-prune"], e);
            expect(b.code, b.stderr).toBe(0);
            const r = await runCli(["verify", "--json"], e);
            expect(r.code, r.stderr).toBe(0);
            const report = JSON.parse(r.stdout);
            const took = (step: string) => report.steps.find((s: any) => s.step === step).durationMs;
            expect(report.steps.find((s: any) => s.step === "roles").detail).toMatch(/created 1500 role\(s\)/);
            expect(took("roles")).toBeGreaterThan(took("readable") + took("checksum"));
            expect(report.restoreEndToEndMs).toBeGreaterThanOrEqual(took("checksum") + took("roles") + took("restore"));
        } finally {
            source.psql("postgres", "DROP DATABASE many_roles");
            source.psql("postgres", "DO $$ BEGIN FOR i IN 1..1500 LOOP EXECUTE format('DROP ROLE kx_rto_r%s', i); END LOOP; END $$;");
        }
    });

    it("fails on a flipped byte, at the checksum step", async () => {
        const { dump } = await freshBackup("flip");
        const bytes = readFileSync(dump);
        bytes[Math.floor(bytes.length / 2)] ^= 0xff;
        writeFileSync(dump, bytes);
        const r = await runCli(["verify"], env("flip"));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(/verify crypto_exchange failed at checksum: checksum mismatch for crypto_exchange\/.*\.dump on local/);
        expect(scratchDatabases()).toBe("");
    });

    it("fails on a truncated object", async () => {
        const { dump } = await freshBackup("trunc");
        truncateSync(dump, 1000);
        const r = await runCli(["verify"], env("trunc"));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(/failed at checksum: size mismatch .*stored 1000 bytes, manifest says \d+ \(truncated or replaced\)/);
        expect(scratchDatabases()).toBe("");
    });

    it("a missing BACKUP_WORK_DIR is this side's problem: named as such, and no copy is called bad", async () => {
        await freshBackup("nowork");
        const missing = path.join(work, "no-such-dir");
        const r = await runCli(["verify", "--json"], env("nowork", { BACKUP_WORK_DIR: missing }));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(new RegExp(`failed at checksum: cannot make scratch space in ${missing} \\(BACKUP_WORK_DIR\\): ENOENT`));
        expect(failure(r.stderr)).not.toMatch(/is bad|no good copy/);
        expect(JSON.parse(r.stdout).copies).toEqual([]);
        // The directory format's dump needs it too: the same words, before pg_dump runs.
        const b = await runCli(["backup", "--no-prune", "--format", "directory"], env("nowork", { BACKUP_WORK_DIR: missing }));
        expect(b.code).toBe(1);
        expect(failure(b.stderr)).toMatch(/cannot make scratch space in .*no-such-dir \(BACKUP_WORK_DIR\): ENOENT/);
        expect(scratchDatabases()).toBe("");
    });

    it("fails when the manifest is missing", async () => {
        const { dump, manifest } = await freshBackup("nomanifest");
        unlinkSync(manifest);
        const named = await runCli(["verify", "--backup", path.basename(dump)], env("nomanifest"));
        expect(named.code).toBe(1);
        expect(failure(named.stderr)).toMatch(/failed at exists: backup crypto_exchange\/.*\.dump on local has no manifest: it is incomplete/);
        const latest = await runCli(["verify"], env("nomanifest"));
        expect(latest.code).toBe(1);
        expect(failure(latest.stderr)).toMatch(/no complete full backup of crypto_exchange on local/);
        expect(scratchDatabases()).toBe("");
    });

    it("fails when the manifest's counts differ from the data, naming the table", async () => {
        const { manifest } = await freshBackup("counts");
        const m = JSON.parse(readFileSync(manifest, "utf8"));
        m.tables.find((t: { name: string }) => t.name === "wallets").rows += 1;
        writeFileSync(manifest, JSON.stringify(m));
        const r = await runCli(["verify"], env("counts"));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(/failed at counts: row counts differ from the backup's snapshot: public\.wallets: 900 rows, manifest says 901/);
        expect(scratchDatabases()).toBe("");
    });

    it("fails on a negative balance, naming the check", async () => {
        source.psql(DB, "UPDATE wallets SET balance = -1 WHERE id = 7");
        try {
            await freshBackup("negative");
            const r = await runCli(["verify"], env("negative"));
            expect(r.code).toBe(1);
            expect(failure(r.stderr)).toMatch(/failed at integrity: integrity check failed: no negative wallet balance: 1 violating row\(s\)$/m);
            // The violating row is customer data: it must not reach logs or notifications.
            expect(r.stderr).not.toMatch(/"id":"7"|user_id|-1\.0|balance":/);
            expect(scratchDatabases()).toBe("");
        } finally {
            source.psql(DB, "UPDATE wallets SET balance = 1 WHERE id = 7");
        }
    });

    it("uses configured checks instead of the defaults", async () => {
        await freshBackup("custom");
        const file = path.join(work, "checks.json");
        writeFileSync(file, JSON.stringify({ crypto_exchange: [{ name: "no users at all", sql: "SELECT id FROM users LIMIT 1" }] }));
        const r = await runCli(["verify"], env("custom", { VERIFY_CHECKS_FILE: file }));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(/no users at all: 1 violating row/);
    });

    it("refuses a broken checks file before it downloads or restores anything (exit 2)", async () => {
        await freshBackup("custom");
        const file = path.join(work, "broken-checks.json");
        writeFileSync(file, "{ not json");
        const r = await runCli(["verify"], env("custom", { VERIFY_CHECKS_FILE: file }));
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/VERIFY_CHECKS_FILE .*broken-checks\.json is not readable JSON/);
        expect(r.stderr).not.toMatch(/"step":"(exists|copies|restore)"/);
        expect(scratchDatabases()).toBe("");
    });
});


describe("verify server", () => {
    it("says VERIFY_PGPASSWORD when the verify server refuses the password", async () => {
        await freshBackup("badpw");
        const r = await runCli(["verify"], env("badpw", { VERIFY_PGPASSWORD: "wrong" }));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(/password authentication failed for PostgreSQL at 127\.0\.0\.1:\d+ as postgres: check VERIFY_PGPASSWORD/);
        expect(failure(r.stderr)).not.toMatch(/check PGPASSWORD/);
    });
});

const digest = (db: string, table: string) => source.psql(db, `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ${table} t`);
/** What a database is, as pg_dump --create --schema-only says (its \\restrict key aside). */
function schemaOf(db: string): string {
    const out = execFileSync(path.join(PG_BIN, "pg_dump"), ["--schema-only", "--create", "-d", db], { env: { PATH: process.env.PATH ?? "", ...source.env(db) } });
    return out.toString().replace(/^\\(un)?restrict .*$/gm, "");
}
/** A new database `name` holding what `sql` makes (an old one of that name is dropped first). */
function freshDatabase(name: string, sql: string): void {
    source.psql("postgres", `DROP DATABASE IF EXISTS ${name}`);
    source.psql("postgres", `CREATE DATABASE ${name}`);
    source.psql(name, sql);
}
const databases = () => source.psql("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'kx\\_%'");

describe("restore", () => {
    let backupDir: string;
    let backupName: string;

    beforeAll(async () => {
        backupDir = "restore";
        backupName = path.basename((await freshBackup(backupDir)).dump);
    }, 60_000);

    it("restores into another database (§4.4) and checks it against the backup", async () => {
        const r = await runCli(["restore", "--into", "crypto_exchange_test"], env(backupDir));
        expect(r.code, r.stderr).toBe(0);
        expect(logLines(r.stderr).find((l) => l.event === "restore.done")?.msg).toMatch(/restore crypto_exchange\/.*\.dump → crypto_exchange_test ok in .*: 8 table\(s\) match the snapshot's counts/);
        expect(logLines(r.stderr).find((l) => l.event === "restore.checked")?.msg).toMatch(/counts, properties, schema, sequences, large-objects match the backup/);
        for (const t of ["users", "wallets", "orders", "trades", "kyc_submissions"]) {
            expect(digest("crypto_exchange_test", t)).toBe(digest(DB, t));
        }
        expect(databases()).toBe("");
    });

    it("refuses to overwrite a non-empty database without --force, naming the backup a retry uses; --plan changes nothing", async () => {
        freshDatabase("target_plan", "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1), (2)");
        const refused = await runCli(["restore", "--into", "target_plan"], env(backupDir));
        expect(refused.code).toBe(2);
        expect(failure(refused.stderr)).toBe(`database target_plan exists and holds 1 relation: add --force to replace it (a safety dump is taken first), or restore --into a new database. target_plan was not changed; to retry with the same backup: --backup ${backupName}`);
        const plan = await runCli(["restore", "--into", "target_plan", "--force", "--terminate-connections", "--plan"], env(backupDir));
        expect(plan.code, plan.stderr).toBe(0);
        expect(plan.stdout).toMatch(new RegExp([
            "1\\. check the sha256 of crypto_exchange/.*\\.dump on local",
            "2\\. check that the server has the roles the backup needs",
            "3\\. take a safety dump of target_plan to every target \\(target_plan/safety/\\)",
            "4\\. create database (kx_new_[0-9a-f]{6}_target_plan) with the backup's properties .*",
            "5\\. restore the backup into \\1 \\(owners and privileges kept\\)",
            "6\\. check \\1: row counts against the backup's snapshot, schema and database properties against the dump, sequences, large objects",
            "7\\. terminate other sessions on target_plan",
            "8\\. swap in one transaction: rename target_plan to (kx_old_[0-9a-f]{6}_target_plan), \\1 to target_plan",
            "9\\. drop the original \\(\\2\\)",
        ].join("\n")));
        expect(source.psql("target_plan", "SELECT count(*) FROM keep_me")).toBe("2");
        expect(readdirSync(path.join(work, backupDir))).not.toContain("target_plan");
    });

    it("a database holding only a large object is not empty", async () => {
        freshDatabase("target_lo", "SELECT lo_from_bytea(4242, 'precious')");
        const r = await runCli(["restore", "--into", "target_lo"], env(backupDir));
        expect(r.code).toBe(2);
        expect(failure(r.stderr)).toMatch(/database target_lo exists and holds 1 large object: add --force/);
        expect(source.psql("target_lo", "SELECT convert_from(lo_get(4242), 'UTF8')")).toBe("precious");
    });

    it("refuses while other sessions are connected, naming the backup; --terminate-connections ends them", async () => {
        freshDatabase("target_busy", "CREATE TABLE old_data (id int); INSERT INTO old_data VALUES (42)");
        const session = new Client({ host: "127.0.0.1", port: source.port, user: "postgres", password: source.password, database: "target_busy" });
        await session.connect();
        session.on("error", () => undefined);
        const refused = await runCli(["restore", "--into", "target_busy", "--force"], env(backupDir));
        expect(refused.code).toBe(2);
        expect(failure(refused.stderr)).toMatch(new RegExp(`database target_busy has 1 other session\\(s\\): stop the writers .* or add --terminate-connections\\. target_busy was not changed; to retry with the same backup: --backup ${backupName.replace(/\./g, "\\.")}$`));
        expect(readdirSync(path.join(work, backupDir))).not.toContain("target_busy");

        const r = await runCli(["restore", "--into", "target_busy", "--force", "--terminate-connections"], env(backupDir));
        expect(r.code, r.stderr).toBe(0);
        expect(logLines(r.stderr).find((l) => l.event === "restore.terminate")?.sessions).toBe(1);
        await expect(session.query("SELECT 1")).rejects.toBeDefined();
        // The safety dump is a complete backup of what was there, in the database's safety folder.
        const folder = path.join(work, backupDir, "target_busy", "safety");
        const manifest = JSON.parse(readFileSync(path.join(folder, readdirSync(folder).find((f) => f.endsWith(".manifest.json"))!), "utf8"));
        expect(manifest.purpose).toBe("safety");
        expect(countsOf(manifest)).toEqual({ "public.old_data": 1 });
        expect(source.psql("target_busy", "SELECT to_regclass('old_data') IS NULL")).toBe("t");
        expect(digest("target_busy", "wallets")).toBe(digest(DB, "wallets"));
        expect(databases()).toBe("");
    });

    it("keeps the original under its documented name with --keep-original", async () => {
        freshDatabase("target_keep", "CREATE TABLE mine (id int); INSERT INTO mine VALUES (7)");
        const r = await runCli(["restore", "--into", "target_keep", "--force", "--no-safety-dump", "--keep-original"], env(backupDir));
        expect(r.code, r.stderr).toBe(0);
        const kept = logLines(r.stderr).find((l) => l.event === "restore.keep-original")?.old as string;
        expect(kept).toMatch(/^kx_old_[0-9a-f]{6}_target_keep$/);
        expect(source.psql(kept, "SELECT id FROM mine")).toBe("7");
        source.psql("postgres", `DROP DATABASE ${kept}`);
    });

    it("leaves the original identical when the restored copy fails its checks, and drops what it built", async () => {
        const dir = "restore-mismatch";
        const { manifest } = await freshBackup(dir);
        const m = JSON.parse(readFileSync(manifest, "utf8"));
        m.tables.find((t: { name: string }) => t.name === "orders").rows -= 1;
        writeFileSync(manifest, JSON.stringify(m));
        freshDatabase("target_orig", "CREATE TABLE orig (id int PRIMARY KEY, note text); INSERT INTO orig SELECT g, 'n' || g FROM generate_series(1, 50) g; COMMENT ON DATABASE target_orig IS 'mine'");
        const before = schemaOf("target_orig");
        const rowsBefore = digest("target_orig", "orig");
        const r = await runCli(["restore", "--into", "target_orig", "--force", "--no-safety-dump"], env(dir));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(/the restored database does not match the backup: counts: row counts differ from the backup's snapshot: public\.orders: 3000 rows, manifest says 2999\. target_orig was not changed; to retry with the same backup: --backup crypto_exchange-/);
        expect(schemaOf("target_orig")).toBe(before);
        expect(digest("target_orig", "orig")).toBe(rowsBefore);
        expect(databases()).toBe("");
    });

    it("leaves the original identical when pg_restore is killed half-way", async () => {
        // A pg_restore that dies (SIGKILL) a moment after it starts restoring into a database.
        const bin = mkdtempSync(path.join(work, "bin-"));
        for (const tool of ["pg_dump", "pg_dumpall", "psql"]) {
            symlinkSync(path.join(PG_BIN, tool), path.join(bin, tool));
        }
        writeFileSync(path.join(bin, "pg_restore"), `#!/bin/sh
case " $* " in *" --dbname "*) "${PG_BIN}/pg_restore" "$@" & pid=$!; sleep 0.3; kill -9 $pid; exit 137;; esac
exec "${PG_BIN}/pg_restore" "$@"
`, { mode: 0o755 });
        freshDatabase("target_killed", "CREATE TABLE orig (id int); INSERT INTO orig VALUES (1), (2), (3)");
        const before = schemaOf("target_killed");
        const rowsBefore = digest("target_killed", "orig");
        const r = await runCli(["restore", "--into", "target_killed", "--force", "--no-safety-dump"], env(backupDir, { BACKUP_PG_BIN_DIR: bin }));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(/pg_restore of crypto_exchange\/.*\.dump into kx_new_[0-9a-f]{6}_target_killed failed: .*\. target_killed was not changed/);
        expect(schemaOf("target_killed")).toBe(before);
        expect(digest("target_killed", "orig")).toBe(rowsBefore);
        expect(databases()).toBe("");
    });

    it("restores selected tables' data only (§4.3) into a database that lost them", async () => {
        source.psql("postgres", "DROP DATABASE IF EXISTS target_tables");
        const created = await runCli(["restore", "--into", "target_tables"], env(backupDir));
        expect(created.code, created.stderr).toBe(0);
        source.psql("target_tables", "UPDATE wallets SET balance = 0");
        const r = await runCli(["restore", "--into", "target_tables", "--tables", "wallets", "--data-only", "--force", "--no-safety-dump"], env(backupDir));
        expect(r.code, r.stderr).toBe(0);
        expect(digest("target_tables", "wallets")).toBe(digest(DB, "wallets"));
        expect(readdirSync(path.join(work, backupDir))).not.toContain("target_tables");
    });

    it("refuses --data-only without --tables", async () => {
        const r = await runCli(["restore", "--into", "whatever", "--data-only"], env(backupDir));
        expect(r.code).toBe(2);
        expect(failure(r.stderr)).toMatch(/--data-only restores selected tables: add --tables/);
    });

    it("refuses a corrupted backup before touching the target", async () => {
        const dir = "restore-corrupt";
        const { dump } = await freshBackup(dir);
        const bytes = readFileSync(dump);
        bytes[100] ^= 1;
        writeFileSync(dump, bytes);
        source.psql("postgres", "DROP DATABASE IF EXISTS target_corrupt");
        const r = await runCli(["restore", "--into", "target_corrupt"], env(dir));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(/checksum mismatch/);
        expect(source.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'target_corrupt'")).toBe("0");
    });
});

describe("restore --tables", () => {
    const LEDGER = "ledgerdb";
    const dir = "tables";
    beforeAll(async () => {
        source.psql("postgres", `CREATE DATABASE ${LEDGER}`);
        source.psql(LEDGER, `
            CREATE SCHEMA ledger;
            CREATE TABLE public.entries (id int PRIMARY KEY, memo text);
            CREATE TABLE ledger.entries (id int PRIMARY KEY, amount numeric, memo text);
            CREATE TABLE public.orders (id int PRIMARY KEY);
            CREATE TABLE public.order_items (id int PRIMARY KEY, order_id int REFERENCES public.orders(id));
            CREATE TABLE "MyTable" (id int);
            INSERT INTO public.entries SELECT g, 'public ' || g FROM generate_series(1, 5) g;
            INSERT INTO ledger.entries SELECT g, g * 1.5, E'back\\\\slash ' || g FROM generate_series(1, 8) g;
            INSERT INTO public.orders SELECT generate_series(1, 4);
            INSERT INTO public.order_items SELECT g, 1 + g % 4 FROM generate_series(1, 6) g;
            INSERT INTO "MyTable" VALUES (1), (2), (3);`);
        const r = await runCli(["backup", "--no-prune"], env(dir, { PGDATABASE: LEDGER }));
        expect(r.code, r.stderr).toBe(0);
        const copy = await runCli(["restore", "--into", "ledger_copy"], env(dir, { PGDATABASE: LEDGER }));
        expect(copy.code, copy.stderr).toBe(0);
    }, 60_000);

    const restoreTables = (tables: string, extra: string[] = [], e: Record<string, string> = {}) =>
        runCli(["restore", "--into", "ledger_copy", "--tables", tables, "--data-only", "--force", "--no-safety-dump", ...extra], env(dir, { PGDATABASE: LEDGER, ...e }));

    it("restores ledger.entries and never touches public.entries", async () => {
        source.psql("ledger_copy", "DELETE FROM ledger.entries WHERE id > 2; UPDATE public.entries SET memo = 'changed since'");
        const publicBefore = digest("ledger_copy", "public.entries");
        const r = await restoreTables("ledger.entries");
        expect(r.code, r.stderr).toBe(0);
        expect(digest("ledger_copy", "ledger.entries")).toBe(digest(LEDGER, "ledger.entries"));
        expect(digest("ledger_copy", "public.entries")).toBe(publicBefore);
    });

    it("expands wildcards to exact tables and restores quoted names", async () => {
        source.psql("ledger_copy", `DELETE FROM public.order_items; DELETE FROM public.orders; DELETE FROM "MyTable"`);
        const r = await restoreTables(`order*,"MyTable"`);
        expect(r.code, r.stderr).toBe(0);
        expect(logLines(r.stderr).find((l) => l.event === "restore.tables")?.msg).toMatch(/restored public\.(orders|order_items), public\.(orders|order_items), public\."MyTable" into ledger_copy in one transaction: 13 row\(s\), counts match/);
        for (const t of ["public.orders", "public.order_items", `"MyTable"`]) {
            expect(digest("ledger_copy", t)).toBe(digest(LEDGER, t));
        }
    });

    it.each([
        ["an unknown table", "ledger.nope", /--tables: ledger\.nope: no such table in the backup \(the backup has 5 table\(s\): .*\)\. ledger_copy was not changed; to retry/],
        ["an unquoted mixed-case name", "MyTable", /MyTable: no such table in the backup \(unquoted names fold to lower case: quote it, "MyTable"\)/],
        ["a name in two schemas", "entries", /entries is in several schemas \(ledger\.entries, public\.entries\): name the schema/],
    ])("refuses %s with exit 2, touching nothing", async (_what, tables, message) => {
        source.psql("ledger_copy", "UPDATE ledger.entries SET memo = 'mine'");
        const before = digest("ledger_copy", "ledger.entries");
        const r = await restoreTables(tables);
        expect(r.code).toBe(2);
        expect(failure(r.stderr)).toMatch(message);
        expect(digest("ledger_copy", "ledger.entries")).toBe(before);
        expect(readdirSync(path.join(work, dir))).not.toContain("ledger_copy");
    });

    it("rolls back to what was there when the counts do not match", async () => {
        const folder = path.join(work, dir, LEDGER);
        const manifest = path.join(folder, readdirSync(folder).find((f) => f.endsWith(".manifest.json"))!);
        const original = readFileSync(manifest, "utf8");
        const m = JSON.parse(original);
        m.tables.find((t: { schema: string; name: string }) => t.schema === "ledger" && t.name === "entries").rows += 1;
        writeFileSync(manifest, JSON.stringify(m));
        try {
            source.psql("ledger_copy", "DELETE FROM ledger.entries WHERE id > 3");
            const before = digest("ledger_copy", "ledger.entries");
            const r = await restoreTables("ledger.entries");
            expect(r.code).toBe(1);
            expect(failure(r.stderr)).toMatch(/row counts differ from the backup's snapshot: ledger\.entries 8 ≠ 9\. ledger_copy is as it was \(the tables' transaction was rolled back\)/);
            expect(digest("ledger_copy", "ledger.entries")).toBe(before);
        } finally {
            writeFileSync(manifest, original);
        }
    });
});

describe("plain backups cannot run commands", () => {
    const marker = path.join(os.tmpdir(), `kx-pwned-${process.pid}`);
    const PLAIN = "plaindb";

    beforeAll(() => {
        source.psql("postgres", `CREATE DATABASE ${PLAIN}`);
        // Backslashes where a dump holds them as data: COPY rows, E'' strings, function bodies, names.
        source.psql(PLAIN, String.raw`
            CREATE TABLE "back\slash" (id int PRIMARY KEY, path text, raw bytea);
            INSERT INTO "back\slash" VALUES (1, E'C:\\Users\\x\\!not-a-command', E'\\x5c21'), (2, E'line\nbreak\ttab', NULL), (3, '\.', '\x5c2e');
            CREATE FUNCTION esc() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN RETURN E'\\! stays a string'; END $f$;
            COMMENT ON TABLE "back\slash" IS E'a \\! comment';`);
    });

    /** A plain backup of plaindb, optionally signed. */
    async function plainBackup(folder: string, extra: Record<string, string> = {}): Promise<{ sql: string; manifest: string }> {
        const r = await runCli(["backup", "--no-prune"], env(folder, { PGDATABASE: PLAIN, BACKUP_FORMAT: "plain", ...extra }));
        expect(r.code, r.stderr).toBe(0);
        const dirOf = path.join(work, folder, PLAIN);
        const name = readdirSync(dirOf).find((f) => f.endsWith(".sql") && !f.includes("globals"))!;
        return { sql: path.join(dirOf, name), manifest: path.join(dirOf, `${name}.manifest.json`) };
    }

    /** Adds a line to the dump and makes the manifest match it again, as anyone with bucket access could. */
    function forge(b: { sql: string; manifest: string }, line: string): void {
        const text = readFileSync(b.sql, "utf8").replace("SET statement_timeout = 0;\n", `SET statement_timeout = 0;\n${line}\n`);
        writeFileSync(b.sql, text);
        const m = JSON.parse(readFileSync(b.manifest, "utf8"));
        m.size = Buffer.byteLength(text);
        m.sha256 = createHash("sha256").update(text).digest("hex");
        writeFileSync(b.manifest, JSON.stringify(m));
    }

    it("restores a legitimate backslash-heavy plain dump byte for byte, and verifies it", async () => {
        await plainBackup("plain-good");
        const v = await runCli(["verify"], env("plain-good", { PGDATABASE: PLAIN }));
        expect(v.code, v.stderr).toBe(0);
        const r = await runCli(["restore", "--into", "plain_copy"], env("plain-good", { PGDATABASE: PLAIN }));
        expect(r.code, r.stderr).toBe(0);
        expect(digest("plain_copy", `"back\\slash"`)).toBe(digest(PLAIN, `"back\\slash"`));
        expect(source.psql("plain_copy", "SELECT esc()")).toBe("\\! stays a string");
    });

    it.each([
        ["without a signing key: refused as a meta-command", {}, /psql meta-command \\! refused: a backup must not run commands/],
        ["with a signing key: refused for its signature first", { BACKUP_SIGNING_KEY: "k".repeat(32) }, /is signed with another key or altered: refusing to use it/],
    ])("a forged \\! line runs nothing %s", async (_what, extra, message) => {
        const folder = `plain-forged-${Object.keys(extra).length}`;
        const b = await plainBackup(folder, extra);
        forge(b, `\\! touch ${marker}`);
        rmSync(marker, { force: true });
        const v = await runCli(["verify"], env(folder, { PGDATABASE: PLAIN, ...extra }));
        expect(v.code).toBe(1);
        expect(failure(v.stderr)).toMatch(message);
        source.psql("postgres", "DROP DATABASE IF EXISTS forged_target");
        const r = await runCli(["restore", "--into", "forged_target"], env(folder, { PGDATABASE: PLAIN, ...extra }));
        expect(r.code).toBe(1);
        expect(failure(r.stderr)).toMatch(message);
        expect(existsSync(marker)).toBe(false);
        expect(source.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'forged_target' OR datname LIKE 'kx\\_%'")).toBe("0");
        expect(scratchDatabases()).toBe("");
    });
});
