/**
 * The seams between counting from the dump stream and restoring or verifying what was counted,
 * end to end: the bundled CLI against a real PostgreSQL. Each test fails without its fix.
 */
import { execFileSync } from "child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "fs";
import * as path from "path";
import { beforeAll, describe, expect, it } from "vitest";
import { PG_BIN, PgCluster } from "../../jobs/dev/services";
import { logLines, newestBackup, runCli } from "../helpers/cli";
import { postgresForFile } from "../helpers/postgresForFile";

let pg: PgCluster;
let work: string;

postgresForFile("kx-seams-e2e-", (started, dir) => {
    pg = started;
    work = dir;
}, 120_000);

function env(db: string, dir: string, extra: Record<string, string> = {}): Record<string, string> {
    return { ...pg.env(db), BACKUP_LOCAL_DIR: path.join(work, dir), ...extra };
}

/** The newest backup's name (without the database folder) in a local target. */
function newest(dir: string, db: string): string {
    return newestBackup(path.join(work, dir), db);
}

describe("restore --tables --data-only of an inheritance parent (counts from the dump stream)", () => {
    const DB = "kx_inherit";

    it("replaces the parent's own rows and leaves its children's rows alone", async () => {
        pg.psql("postgres", `CREATE DATABASE ${DB}`);
        // The pre-partitioning layout: a parent with a few rows of its own, a child per month.
        pg.psql(DB, `
            CREATE TABLE events (id int PRIMARY KEY, at date NOT NULL);
            CREATE TABLE events_2026_05 () INHERITS (events);
            CREATE TABLE events_2026_06 () INHERITS (events);
            INSERT INTO events SELECT g, '2026-04-30' FROM generate_series(1, 5) g;
            INSERT INTO events_2026_05 SELECT g, '2026-05-15' FROM generate_series(100, 1099) g;
            INSERT INTO events_2026_06 SELECT g, '2026-06-15' FROM generate_series(2000, 2499) g;`);
        const b = await runCli(["backup", "--no-prune"], env(DB, "inherit"));
        expect(b.code, b.stderr).toBe(0);
        // A careless fix of the parent's own rows after the backup.
        pg.psql(DB, "DELETE FROM ONLY events WHERE id > 2");

        const r = await runCli(["restore", "--into", DB, "--tables", "events", "--data-only", "--force", "--no-safety-dump"], env(DB, "inherit"));
        expect(r.code, r.stderr).toBe(0);
        expect(pg.psql(DB, "SELECT count(*) FROM ONLY events")).toBe("5");
        // Without ONLY, emptying the parent emptied both children, the load brought back the
        // parent's 5 rows, and its count check (FROM ONLY, as the dump counted) passed.
        expect(pg.psql(DB, "SELECT count(*) FROM events_2026_05")).toBe("1000");
        expect(pg.psql(DB, "SELECT count(*) FROM events_2026_06")).toBe("500");
    }, 120_000);
});

describe("verify of a partial backup named explicitly", () => {
    const DB = "kx_partial";
    const checks = () => {
        const file = path.join(work, "checks.json");
        // A check that an empty table passes without checking anything.
        writeFileSync(file, JSON.stringify({ [DB]: [{ name: "no negative balance", sql: "SELECT id FROM wallets WHERE balance < 0" }] }));
        return file;
    };
    const verifyEnv = (dir: string) => env(DB, dir, {
        VERIFY_PGHOST: "127.0.0.1", VERIFY_PGPORT: String(pg.port), VERIFY_PGUSER: pg.user, VERIFY_PGPASSWORD: pg.password, VERIFY_CHECKS_FILE: checks(),
    });

    beforeAll(() => {
        pg.psql("postgres", `CREATE DATABASE ${DB}`);
        pg.psql(DB, `
            CREATE TABLE wallets (id int PRIMARY KEY, balance numeric NOT NULL);
            CREATE TABLE orders (id int PRIMARY KEY);
            INSERT INTO wallets SELECT g, -1 FROM generate_series(1, 3) g;
            INSERT INTO orders SELECT generate_series(1, 10);`);
    });

    it("a --schema-only backup: integrity checks are skipped, not passed, and every table is read", async () => {
        const b = await runCli(["backup", "--no-prune", "--schema-only"], verifyEnv("schema"));
        expect(b.code, b.stderr).toBe(0);
        const r = await runCli(["verify", "--backup", newest("schema", DB), "--json"], verifyEnv("schema"));
        expect(r.code, r.stderr).toBe(0);
        const report = JSON.parse(r.stdout);
        // The data holds negative balances; a schema-only restore has no rows to find them in.
        expect(report.checks.ran).not.toContain("integrity");
        expect(report.checks.skipped).toContain("integrity");
        expect(report.steps.find((s: any) => s.step === "integrity").detail).toMatch(/not run: .* is a schema-only backup/);
        expect(report.steps.find((s: any) => s.step === "connect").detail).toBe("a new session read 2 tables");
    }, 120_000);

    it("a --table backup: checks about other tables do not fail it", async () => {
        const b = await runCli(["backup", "--no-prune", "--table", "orders"], verifyEnv("table"));
        expect(b.code, b.stderr).toBe(0);
        const r = await runCli(["verify", "--backup", newest("table", DB), "--json"], verifyEnv("table"));
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout).checks.skipped).toContain("integrity");
        expect(logLines(r.stderr).find((l) => l.event === "verify.done")?.ok).toBe(true);
    }, 120_000);

    it("a --data-only backup restores its tables' rows with --tables --data-only (and refuses to create them)", async () => {
        const b = await runCli(["backup", "--no-prune", "--data-only"], verifyEnv("data"));
        expect(b.code, b.stderr).toBe(0);
        pg.psql(DB, "DELETE FROM orders WHERE id > 4");
        const create = await runCli(["restore", "--into", DB, "--backup", newest("data", DB), "--tables", "orders", "--force", "--no-safety-dump"], verifyEnv("data"));
        expect(create.code, create.stderr).toBe(2);
        expect(logLines(create.stderr).find((l) => l.level === "error")?.msg).toMatch(/holds the rows of public\.orders but not the table's definition \(a data-only backup\): add --data-only/);
        const r = await runCli(["restore", "--into", DB, "--backup", newest("data", DB), "--tables", "orders", "--data-only", "--force", "--no-safety-dump"], verifyEnv("data"));
        expect(r.code, r.stderr).toBe(0);
        expect(pg.psql(DB, "SELECT count(*) FROM orders")).toBe("10");
        // Verify cannot restore rows without their tables: it says so, after checking the copy.
        const v = await runCli(["verify", "--backup", newest("data", DB), "--json"], verifyEnv("data"));
        expect(v.code).toBe(1);
        const report = JSON.parse(v.stdout);
        expect(report.steps.filter((x: any) => x.ok).map((x: any) => x.step)).toEqual(expect.arrayContaining(["exists", "checksum"]));
        expect(report.failure).toMatch(/^readable: .* is a data-only backup: it restores only into a database that has its tables/);
    }, 120_000);

    it("a full backup still runs them, and fails on what they find", async () => {
        const b = await runCli(["backup", "--no-prune"], verifyEnv("full"));
        expect(b.code, b.stderr).toBe(0);
        const r = await runCli(["verify", "--json"], verifyEnv("full"));
        expect(r.code).toBe(1);
        expect(JSON.parse(r.stdout).failure).toMatch(/integrity: integrity check failed: no negative balance: 3 violating row\(s\)/);
    }, 120_000);
});

describe("adopt of a runbook dump that was cut short", () => {
    const DB = "kx_runbook";

    it("refuses it (it stays foreign, never deleted) and adopts the whole one beside it", async () => {
        pg.psql("postgres", `CREATE DATABASE ${DB}`);
        pg.psql(DB, "CREATE TABLE trades (id int PRIMARY KEY, note text); INSERT INTO trades SELECT g, md5(g::text) FROM generate_series(1, 20000) g;");
        const folder = path.join(work, "runbook", DB);
        mkdirSync(folder, { recursive: true });
        // The runbook's own `pg_dump -F c -f /tmp/backup.dump`, copied in by hand.
        const whole = path.join(folder, `${DB}-20261120-030000.dump`);
        execFileSync(path.join(PG_BIN, "pg_dump"), ["-F", "c", "-f", whole, DB], { env: { ...process.env, ...pg.env(DB) } });
        // The same dump interrupted (a full disk, a killed `aws s3 cp -`): its table of contents,
        // written first, is whole; pg_restore --list reads it without complaint.
        const cut = path.join(folder, `${DB}-20261121-030000.dump`);
        const bytes = readFileSync(whole);
        writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
        execFileSync(path.join(PG_BIN, "pg_restore"), ["--list", cut]);

        const r = await runCli(["adopt", "--database", DB], env(DB, "runbook"));
        expect(r.code).toBe(1);
        expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(new RegExp(`${DB}/${path.basename(cut)} on local is not a whole dump \\(.*cut short\\): not adopted`));
        expect(existsSync(`${cut}.manifest.json`)).toBe(false);
        expect(existsSync(`${whole}.manifest.json`)).toBe(true);

        const list = await runCli(["list", "--json"], env(DB, "runbook"));
        expect(JSON.parse(list.stdout).map((x: any) => [x.name, x.kind])).toEqual([[path.basename(cut), "foreign"], [path.basename(whole), "full"]]);
        const restore = await runCli(["restore", "--into", "kx_runbook_copy"], env(DB, "runbook"));
        expect(restore.code, restore.stderr).toBe(0);
        expect(pg.psql("kx_runbook_copy", "SELECT count(*) FROM trades")).toBe("20000");
    }, 120_000);
});
