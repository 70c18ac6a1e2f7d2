/**
 * A stop (SIGTERM) leaves nothing behind: what restore and verify create — a throwaway
 * PostgreSQL, a scratch database, a download — is registered with the shutdown module, whose
 * cleanups the CLI runs on a signal. Exercised here in-process through runCleanups().
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgCluster, startPostgres } from "../../jobs/dev/services";
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

let server: PgCluster;
let work: string;
const quiet = new Logger("json", new Writable({ write: (_c, _e, cb) => cb() }), false);

const settings = (env: Record<string, string>) => settingsFrom({ BACKUP_LOCAL_DIR: work, ...env });

beforeAll(async () => {
    server = await startPostgres();
    work = mkdtempSync(path.join(os.tmpdir(), "kx-stop-"));
}, 60_000);

afterAll(() => {
    server?.remove();
    rmSync(work, { recursive: true, force: true });
});

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
