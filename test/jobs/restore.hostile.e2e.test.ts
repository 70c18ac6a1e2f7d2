/**
 * Hostile restores against a real server (from the r-early review). The answer must not depend on
 * BACKUP_RESTORE_JOBS, and nothing may be left behind:
 *   - a table written to after its data was loaded (a materialized view whose refresh, in
 *     pg_restore's last pass, calls a function that inserts into it): verify and restore must
 *     count the final rows and refuse the copy. Counting a table as soon as pg_restore reported it
 *     loaded passed this copy; that was removed, and these tests keep it out;
 *   - forged "pg_restore: finished item N TABLE DATA t" lines (a table name holding a newline, a
 *     RAISE WARNING relayed by pg_restore): nothing may be read from pg_restore's progress output;
 *   - a restore that fails in a worker: the worker's error is reported, not "a worker process died
 *     unexpectedly";
 *   - verify of a template database: its scratch copy (a template too) is dropped;
 *   (from the r-final6 review)
 *   - a COPY refused in a worker, on a table named failed_jobs holding "connection error": the
 *     server's error is reported, never the COPY's context line (which quotes the row);
 *   - a template original that cannot be dropped after the swap (a subscription) stays a template.
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { beforeAll, describe, expect, it } from "vitest";
import { PG_BIN, PgCluster, verifyServerEnv } from "../../jobs/dev/services";
import { logLines, newestBackup, runCli } from "../helpers/cli";
import { postgresForFile } from "../helpers/postgresForFile";

let pg: PgCluster;
let work: string;

postgresForFile("kx-restorehostile-", (started, dir) => {
    pg = started;
    work = dir;
});

const env = (db: string, dir: string, extra: Record<string, string> = {}) => ({ ...pg.env(db), BACKUP_LOCAL_DIR: dir, ...extra });

/** The TOC id pg_dump gives a table's TABLE DATA entry (stable while the set of objects is). */
function tableDataId(db: string, table: string): number {
    const list = execFileSync("sh", ["-c", `"${PG_BIN}/pg_dump" -Fc | "${PG_BIN}/pg_restore" --list`], { env: { PATH: process.env.PATH ?? "", ...pg.env(db) } }).toString();
    const m = new RegExp(`^(\\d+); \\d+ \\d+ TABLE DATA public ${table} `, "m").exec(list);
    if (!m) {
        throw new Error(`no TABLE DATA ${table} in\n${list}`);
    }
    return Number(m[1]);
}

async function backup(db: string): Promise<{ dir: string; name: string }> {
    const dir = path.join(work, db);
    const b = await runCli(["backup", "--no-prune"], env(db, dir));
    expect(b.code, b.stderr).toBe(0);
    return { dir, name: newestBackup(dir, db) };
}

async function verify(db: string, b: { dir: string; name: string }, jobs: number) {
    const r = await runCli(["verify", "--backup", b.name, "--from", "local", "--json"], env(db, b.dir, { ...verifyServerEnv(pg), BACKUP_RESTORE_JOBS: String(jobs) }));
    const counts = r.stdout ? JSON.parse(r.stdout).steps.find((x: { step: string }) => x.step === "counts") : undefined;
    return { code: r.code, counts: counts as { ok: boolean; detail: string } | undefined, stderr: r.stderr };
}

describe("a table written to after its data was loaded (materialized view refresh with a side effect)", () => {
    const db = "mvside";
    beforeAll(() => {
        pg.psql("postgres", `CREATE DATABASE ${db}`);
        // audit has 6 rows in the source; every REFRESH (pg_restore runs one, in its last pass) adds one.
        pg.psql(db, "CREATE TABLE audit (at timestamptz DEFAULT now(), note text);" +
            "INSERT INTO audit(note) SELECT 'x' FROM generate_series(1, 5);" +
            "CREATE TABLE big (a int, b text); INSERT INTO big SELECT g, repeat('y', 100) FROM generate_series(1, 100000) g;" +
            "CREATE FUNCTION stamp() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.audit(note) VALUES ('refresh'); RETURN 1; END $$;" +
            "CREATE MATERIALIZED VIEW mv AS SELECT stamp() AS s;");
    });

    it("verify fails the counts check whatever BACKUP_RESTORE_JOBS is (the restored audit has 7 rows, the manifest 6)", async () => {
        const b = await backup(db);
        const one = await verify(db, b, 1);
        expect(one.counts?.ok, one.stderr).toBe(false);
        expect(one.counts?.detail).toMatch(/public\.audit: 7 rows, manifest says 6/);
        const two = await verify(db, b, 2);
        expect(two.counts?.detail, two.stderr).toMatch(/public\.audit: 7 rows, manifest says 6/);
        expect(two.code).toBe(1);
    }, 240_000);

    it("restore refuses to swap in a database whose audit does not hold the manifest's rows", async () => {
        const b = await backup(db);
        const r = await runCli(["restore", "--into", "mvside_copy", "--backup", b.name, "--from", "local"], env(db, b.dir, { BACKUP_RESTORE_JOBS: "2" }));
        const restored = pg.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'mvside_copy'") === "1" ? pg.psql("mvside_copy", "SELECT count(*) FROM audit") : "none";
        expect({ code: r.code, restoredAuditRows: restored }, logLines(r.stderr).map((l) => l.msg).join("\n")).toEqual({ code: 1, restoredAuditRows: "none" });
    }, 240_000);
});

describe("forged 'pg_restore: finished item' lines", () => {
    // Two large tables keep both workers busy; victim (created last, loaded last) is still empty when the forged line is read.
    const setup = (db: string) => {
        pg.psql("postgres", `CREATE DATABASE ${db}`);
        pg.psql(db, "CREATE FUNCTION chk(a int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN RETURN true; END $$;" +
            "CREATE TABLE big (a int, b text); INSERT INTO big SELECT g, repeat('y', 100) FROM generate_series(1, 400000) g;" +
            "CREATE TABLE big2 (a int, b text); INSERT INTO big2 SELECT g, repeat('y', 100) FROM generate_series(1, 60000) g;" +
            "CREATE TABLE m_trig (a int CHECK (chk(a))); INSERT INTO m_trig VALUES (1);" +
            "CREATE TABLE n_big3 (a int, b text); INSERT INTO n_big3 SELECT g, repeat('y', 100) FROM generate_series(1, 400000) g;" +
            "CREATE TABLE evil (a int); INSERT INTO evil VALUES (1);" +
            "CREATE TABLE victim (a int); INSERT INTO victim SELECT generate_series(1, 1000);");
        return tableDataId(db, "victim");
    };
    /** Verify of a fresh backup passes with one restore job and with two, victim counted with its rows. */
    const passesWithEitherJobs = async (db: string) => {
        const b = await backup(db);
        const one = await verify(db, b, 1);
        expect(one.code, one.stderr).toBe(0);
        const two = await verify(db, b, 2);
        expect(two.counts?.detail, two.stderr).not.toMatch(/victim: 0 rows/);
        expect(two.code).toBe(0);
    };

    it("a table named 'x<newline>pg_restore: finished item N TABLE DATA victim': verify of a correct backup passes with either jobs setting", async () => {
        const db = "forgename";
        const id = setup(db);
        pg.psql(db, `ALTER TABLE evil RENAME TO "z_evil\npg_restore: finished item ${id} TABLE DATA victim"`);
        expect(tableDataId(db, "victim")).toBe(id);
        await passesWithEitherJobs(db);
    }, 240_000);

    it("a RAISE WARNING during a COPY printing that line: verify of a correct backup passes", async () => {
        const db = "forgewarn";
        const id = setup(db);
        pg.psql(db, "CREATE OR REPLACE FUNCTION chk(a int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN " +
            `IF current_database() <> '${db}' THEN RAISE WARNING E'note\\npg_restore: finished item ${id} TABLE DATA victim'; END IF; RETURN true; END $$;`);
        expect(tableDataId(db, "victim")).toBe(id);
        await passesWithEitherJobs(db);
    }, 240_000);
});

describe("a restore that fails midway, with one job and with two", () => {
    const db = "midfail";
    beforeAll(() => {
        pg.psql("postgres", `CREATE DATABASE ${db}`);
        // failed_jobs' CHECK refuses every row outside the source database: its COPY fails (in a
        // worker, with two jobs). Its name and its row hold the words a careless failure line picks.
        pg.psql(db, "CREATE FUNCTION chk(a int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN " +
            `IF current_database() <> '${db}' THEN RAISE EXCEPTION 'boom: chk refused %', a; END IF; RETURN true; END $$;` +
            "CREATE TABLE a1 (a int, b text); INSERT INTO a1 SELECT g, repeat('y', 50) FROM generate_series(1, 200000) g;" +
            "CREATE TABLE failed_jobs (id int CHECK (chk(id)), payload text); INSERT INTO failed_jobs VALUES (1, 'job x: connection error');");
    });

    for (const jobs of ["1", "2"]) {
        it(`BACKUP_RESTORE_JOBS=${jobs}: verify's failure names the server's error (no context line, no row data), and nothing is left behind`, async () => {
            const dir = path.join(work, db);
            const b = await runCli(["backup", "--no-prune"], env(db, dir));
            expect(b.code, b.stderr).toBe(0);
            const r = await runCli(["verify", "--backup", newestBackup(dir, db), "--from", "local"], env(db, dir, { ...verifyServerEnv(pg), BACKUP_RESTORE_JOBS: jobs }));
            expect(r.code).toBe(1);
            const msg = logLines(r.stderr).find((l) => l.event === "verify.failed")?.msg;
            expect(msg).toMatch(/boom: chk refused 1/);
            expect(msg).not.toMatch(/connection error|worker process died/);
            expect(pg.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'kx\\_%'")).toBe("0");
        }, 240_000);
    }
});

describe("verify of a template database", () => {
    it("drops its scratch database (which the dump's properties made a template too)", async () => {
        const db = "tmpl";
        pg.psql("postgres", `CREATE DATABASE ${db}`);
        pg.psql(db, "CREATE TABLE t (a int); INSERT INTO t VALUES (1);");
        pg.psql("postgres", `ALTER DATABASE ${db} IS_TEMPLATE true`);
        const dir = path.join(work, db);
        const b = await runCli(["backup", "--no-prune"], env(db, dir));
        expect(b.code, b.stderr).toBe(0);
        const r = await runCli(["verify", "--backup", newestBackup(dir, db), "--from", "local"], env(db, dir, verifyServerEnv(pg)));
        const left = pg.psql("postgres", "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'kx\\_verify\\_tmpl%'");
        expect({ code: r.code, left }, logLines(r.stderr).map((l) => l.msg).join("\n")).toEqual({ code: 0, left: "" });
    }, 240_000);
});

describe("dropDatabase on restore's replaced original: a template whose DROP fails", () => {
    it("a kept original is left as it was (still a template) when it cannot be dropped", async () => {
        const db = "tplsub";
        pg.psql("postgres", `CREATE DATABASE ${db}`);
        pg.psql(db, "CREATE TABLE t (a int); INSERT INTO t VALUES (1);" +
            "CREATE SUBSCRIPTION s CONNECTION 'dbname=nowhere' PUBLICATION p WITH (connect = false, slot_name = NONE, enabled = false);");
        pg.psql("postgres", `ALTER DATABASE ${db} IS_TEMPLATE true`);
        const dir = path.join(work, db);
        const b = await runCli(["backup", "--no-prune"], env(db, dir));
        expect(b.code, b.stderr).toBe(0);
        const r = await runCli(["restore", "--into", db, "--force", "--no-safety-dump", "--backup", newestBackup(dir, db), "--from", "local"], env(db, dir));
        const msgs = logLines(r.stderr).map((l) => l.msg).join("\n");
        const olds = pg.psql("postgres", `SELECT string_agg(datname || ':' || datistemplate, ',') FROM pg_database WHERE datname LIKE 'kx\\_old\\_%'`);
        expect(r.code, msgs).toBe(0);
        // The original could not be dropped (a subscription): it must be kept unchanged, a template as before.
        expect(olds).toMatch(/:true$/);
    }, 240_000);
});
