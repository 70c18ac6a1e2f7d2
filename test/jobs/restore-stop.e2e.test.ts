/**
 * A stop (SIGTERM) leaves nothing behind: what restore and verify create — a throwaway
 * PostgreSQL, a scratch database, a download, pg_restore — is registered with the shutdown
 * module, whose cleanups the CLI runs on a signal. Exercised in-process through runCleanups(),
 * then end to end with SIGTERM sent to the CLI mid-restore.
 */
import { execFileSync } from "child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { PG_BIN, PgCluster } from "../../jobs/dev/services";
import { logLines, runCli } from "../helpers/cli";
import { connect } from "../../jobs/src/db";
import { fetchVerified, locate } from "../../jobs/src/fetch";
import { Logger } from "../../jobs/src/log";
import { dropOnStop } from "../../jobs/src/restore/build";
import { scratchServer } from "../../jobs/src/restore/scratchServer";
import { settingsFrom } from "../helpers/settings";
import { runCleanups } from "../../jobs/src/shutdown";
import { LocalTarget } from "../../jobs/src/targets";
import { createHash } from "crypto";
import { Writable } from "stream";
import { postgresForFile } from "../helpers/postgresForFile";

let server: PgCluster;
let work: string;
/** The fake pg_restore's sleep, in seconds: 60 and a fraction of this run's own. */
const SLEEP = `60.${String(process.pid).padStart(7, "0")}`;
const quiet = new Logger("json", new Writable({ write: (_c, _e, cb) => cb() }), false);

const settings = (env: Record<string, string>) => settingsFrom({ BACKUP_LOCAL_DIR: work, ...env });

postgresForFile("kx-stop-", (started, dir) => {
    server = started;
    work = dir;
}, 60_000);

describe("a stop removes what restore and verify made", () => {
    it("the throwaway PostgreSQL: stopped and its files removed", async () => {
        const scratch = await scratchServer(settings({ PGDATABASE: "x" }), 15, quiet);
        const c = await connect(scratch.settings, "postgres");
        const dataDir = (await c.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0].d;
        await c.end();
        expect(existsSync(dataDir)).toBe(true);
        expect(await runCleanups()).toEqual([]);
        expect(existsSync(dataDir)).toBe(false);
        await expect(connect(scratch.settings, "postgres")).rejects.toThrow(/connection refused/);
    });

    it("a scratch database: dropped, even with a session in it", async () => {
        const s = settings({ ...server.env("postgres") });
        server.psql("postgres", "CREATE DATABASE kx_new_stop_test");
        dropOnStop(s, "kx_new_stop_test");
        const busy = await connect(s, "kx_new_stop_test");
        expect(await runCleanups()).toEqual([]);
        expect(server.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'kx_new_stop_test'")).toBe("0");
        await busy.end().catch(() => undefined);
    });

    it("a download: removed", async () => {
        const body = Buffer.from("a dump");
        mkdirSync(path.join(work, "db"), { recursive: true });
        const key = "db/db-20260101-000000-abcdef.dump";
        writeFileSync(path.join(work, key), body);
        writeFileSync(path.join(work, `${key}.manifest.json`), JSON.stringify({
            kind: "kx-backup/postgres", manifestVersion: 1, database: "db", key, format: "custom", container: "pg_dump",
            size: body.length, sha256: createHash("sha256").update(body).digest("hex"), tables: {}, targets: ["local"], options: {},
        }));
        const downloads = path.join(work, "downloads");
        mkdirSync(downloads);
        await fetchVerified(await locate(new LocalTarget(work), "db", "latest"), downloads);
        expect(readdirSync(downloads)).toHaveLength(1);
        expect(await runCleanups()).toEqual([]);
        expect(readdirSync(downloads)).toEqual([]);
    });
});

describe("SIGTERM mid-restore", () => {
    const DB = "stopdb";
    let bin: string;
    let downloads: string;

    beforeAll(async () => {
        server.psql("postgres", `CREATE DATABASE ${DB}`);
        server.psql(DB, "CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g");
        const r = await runCli(["backup", "--no-prune"], { ...server.env(DB), BACKUP_LOCAL_DIR: path.join(work, "stop-backups") });
        expect(r.code, r.stderr).toBe(0);
        // A pg_restore that takes its time restoring into a database, so the stop lands mid-restore.
        bin = mkdtempSync(path.join(work, "bin-"));
        for (const tool of ["pg_dump", "pg_dumpall", "psql"]) {
            symlinkSync(path.join(PG_BIN, tool), path.join(bin, tool));
        }
        writeFileSync(path.join(bin, "pg_restore"), `#!/bin/sh\ncase " $* " in *" --dbname "*) sleep ${SLEEP};; esac\nexec "${PG_BIN}/pg_restore" "$@"\n`, { mode: 0o755 });
        downloads = mkdtempSync(path.join(work, "work-"));
    }, 60_000);

    // Every process on the machine is looked at (a child left behind is reparented, not ours any
    // more); the sleep's length is this run's own, so another test run's fake restore is not taken for it.
    const sleepers = () => execFileSync("ps", ["-eo", "args"]).toString().split("\n").filter((l) => l.trim() === `sleep ${SLEEP}`);

    /** Runs the CLI and sends SIGTERM once `ready` says the restore is under way. */
    async function stopWhen(args: string[], env: Record<string, string>, ready: () => boolean) {
        let pid = 0;
        let exited = false;
        const run = runCli(args, { ...env, BACKUP_PG_BIN_DIR: bin, BACKUP_WORK_DIR: downloads }, { onStart: (p) => (pid = p) });
        void run.finally(() => (exited = true));
        const deadline = Date.now() + 40_000;
        while (!ready() && !exited && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 100));
        }
        process.kill(pid, "SIGTERM");
        return run;
    }

    it("restore: exit 143, the original untouched, no scratch database, download or child left", async () => {
        server.psql("postgres", "CREATE DATABASE stop_target");
        server.psql("stop_target", "CREATE TABLE mine (id int); INSERT INTO mine VALUES (1)");
        const building = () => server.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'kx\\_new\\_%'") === "1" && sleepers().length > 0;
        const r = await stopWhen(["restore", "--into", "stop_target", "--force", "--no-safety-dump"], { ...server.env(DB), BACKUP_LOCAL_DIR: path.join(work, "stop-backups") }, building);
        expect(r.code, r.stderr).toBe(143);
        expect(logLines(r.stderr).filter((l) => l.level === "error").at(-1)?.msg).toMatch(/SIGTERM/);
        expect(server.psql("postgres", "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'kx\\_%'")).toBe("");
        expect(server.psql("stop_target", "SELECT string_agg(id::text, ',') FROM mine")).toBe("1");
        expect(readdirSync(downloads)).toEqual([]);
        expect(sleepers()).toEqual([]);
    });

    it("verify with a throwaway PostgreSQL: exit 143, the cluster stopped and removed, no download or child left", async () => {
        // The throwaway cluster is made under TMPDIR: a directory of this test's own.
        const tmp = mkdtempSync(path.join(os.tmpdir(), "kx-stop-tmp-"));
        chmodSync(tmp, 0o755); // initdb runs as postgres
        onTestFinished(() => rmSync(tmp, { recursive: true, force: true }));
        const restoring = () => sleepers().length > 0;
        const r = await stopWhen(["verify"], { ...server.env(DB), BACKUP_LOCAL_DIR: path.join(work, "stop-backups"), TMPDIR: tmp }, restoring);
        expect(r.code, r.stderr).toBe(143);
        expect(logLines(r.stderr).some((l) => l.event === "verify.scratch")).toBe(true);
        expect(readdirSync(tmp)).toEqual([]);
        expect(execFileSync("ps", ["-eo", "args"]).toString().split("\n").filter((l) => l.includes(tmp))).toEqual([]);
        expect(readdirSync(downloads)).toEqual([]);
        expect(sleepers()).toEqual([]);
    });
});
