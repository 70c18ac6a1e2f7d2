/**
 * verify and restore end to end: the bundled CLI, a source PostgreSQL holding a runbook-shaped
 * crypto_exchange, and a separate verify server (standing in for the pod's sidecar).
 */
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, mkdtempSync, unlinkSync } from "fs";
import * as os from "os";
import * as path from "path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgCluster, startPostgres } from "../../jobs/dev/services";
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
            ["exists", true], ["checksum", true], ["readable", true], ["restore", true],
            ["counts", true], ["integrity", true], ["connect", true], ["cleanup", true],
        ]);
        expect(report.steps.find((s: any) => s.step === "integrity").detail).toMatch(/no negative wallet balance, no trade referring to a missing order/);
        expect(report.restoreDurationMs).toBeGreaterThan(0);
        const recorded = JSON.parse(readFileSync(`${dump}.verify.json`, "utf8"));
        expect(recorded.restoreDurationMs).toBe(report.restoreDurationMs);
        const list = JSON.parse((await runCli(["list", "--json"], env("good"))).stdout);
        expect(list[0].status).toBe("verified");
        expect(scratchDatabases()).toBe("");
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
            expect(failure(r.stderr)).toMatch(/failed at integrity: integrity check failed: no negative wallet balance: 1 violating row\(s\), first \{"id":"7"/);
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
});

describe("restore", () => {
    let backupDir: string;

    beforeAll(async () => {
        backupDir = "restore";
        await freshBackup(backupDir);
    }, 60_000);

    const digest = (db: string, table: string) => source.psql(db, `SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY t::text)) FROM ${table} t`);

    it("restores into another database (§4.4) and checks the counts", async () => {
        const r = await runCli(["restore", "--into", "crypto_exchange_test"], env(backupDir));
        expect(r.code, r.stderr).toBe(0);
        expect(logLines(r.stderr).find((l) => l.event === "restore.done")?.msg).toMatch(/restore crypto_exchange\/.*\.dump → crypto_exchange_test ok in .*: 8 table\(s\) match the backup's counts/);
        for (const t of ["users", "wallets", "orders", "trades", "kyc_submissions"]) {
            expect(digest("crypto_exchange_test", t)).toBe(digest(DB, t));
        }
    });

    it("refuses to overwrite a non-empty database without --force, and --plan changes nothing", async () => {
        source.psql("postgres", "DROP DATABASE IF EXISTS target_plan");
        source.psql("postgres", "CREATE DATABASE target_plan");
        source.psql("target_plan", "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1), (2)");
        const refused = await runCli(["restore", "--into", "target_plan"], env(backupDir));
        expect(refused.code).toBe(2);
        expect(failure(refused.stderr)).toMatch(/database target_plan exists and holds 1 table\(s\) with 2 row\(s\): add --force/);
        const plan = await runCli(["restore", "--into", "target_plan", "--force", "--terminate-connections", "--plan"], env(backupDir));
        expect(plan.code, plan.stderr).toBe(0);
        expect(plan.stdout).toMatch(/1\. check the sha256 of crypto_exchange\/.*\.dump on local\n2\. take a safety dump of target_plan to every target\n3\. terminate other sessions on target_plan\n4\. drop database target_plan\n5\. create database target_plan\n6\. pg_restore into target_plan\n7\. compare row counts/);
        expect(source.psql("target_plan", "SELECT count(*) FROM keep_me")).toBe("2");
        expect(readdirSync(path.join(work, backupDir))).not.toContain("target_plan");
    });

    it("with --force: takes a safety dump first, terminates sessions, then recreates (§4.1)", async () => {
        source.psql("postgres", "DROP DATABASE IF EXISTS target_force");
        source.psql("postgres", "CREATE DATABASE target_force");
        source.psql("target_force", "CREATE TABLE old_data (id int); INSERT INTO old_data VALUES (42)");
        const session = new Client({ ...source.env("target_force"), host: "127.0.0.1", port: source.port, user: "postgres", password: source.password, database: "target_force" });
        await session.connect();
        session.on("error", () => undefined);
        const r = await runCli(["restore", "--into", "target_force", "--force", "--terminate-connections"], env(backupDir));
        expect(r.code, r.stderr).toBe(0);
        expect(logLines(r.stderr).find((l) => l.event === "restore.terminate")?.sessions).toBe(1);
        await expect(session.query("SELECT 1")).rejects.toBeDefined();
        // The safety dump is a complete backup of what was there.
        const safety = readdirSync(path.join(work, backupDir, "target_force", "safety"));
        expect(safety.filter((f) => f.endsWith(".manifest.json"))).toHaveLength(1);
        const manifest = JSON.parse(readFileSync(path.join(work, backupDir, "target_force", "safety", safety.find((f) => f.endsWith(".manifest.json"))!), "utf8"));
        expect(manifest.purpose).toBe("safety");
        expect(countsOf(manifest)).toEqual({ "public.old_data": 1 });
        expect(source.psql("target_force", "SELECT to_regclass('old_data') IS NULL")).toBe("t");
        expect(digest("target_force", "wallets")).toBe(digest(DB, "wallets"));
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
