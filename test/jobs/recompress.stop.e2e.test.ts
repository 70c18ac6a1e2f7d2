/**
 * Review (r-zip): stops and failures in the middle of a job-compressed backup: a SIGTERM while the
 * rebuilt archive streams, and pg_dump's connection killed mid-stream. Both must end promptly,
 * fail, and leave nothing behind (no dump, no manifest).
 */
import { mkdirSync, readdirSync, statSync } from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { PgCluster } from "../../jobs/dev/services";
import { CliResult, logLines, runCli } from "../helpers/cli";
import { postgresForFile } from "../helpers/postgresForFile";

let pg: PgCluster;
let work: string;
const DB = "kx_rzip_stop";

postgresForFile("kx-rzip-stop-", (started, dir) => {
    pg = started;
    work = dir;
    pg.psql("postgres", `CREATE DATABASE ${DB}`);
    pg.psql(DB, "CREATE TABLE t (id bigint, v text); INSERT INTO t SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 1200000) g;");
});

function files(dir: string): { name: string; size: number }[] {
    const out: { name: string; size: number }[] = [];
    const walk = (d: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) {
                walk(p);
            } else {
                out.push({ name: path.relative(dir, p), size: statSync(p).size });
            }
        }
    };
    try {
        walk(dir);
    } catch {
        // not created yet
    }
    return out;
}

async function runUntil(dir: string, ready: () => boolean, act: (pid: number) => void): Promise<CliResult & { ms: number }> {
    let pid = 0;
    let ended = false;
    const run = runCli(["backup", "--no-prune"], { ...pg.env(DB), BACKUP_LOCAL_DIR: dir, BACKUP_LOG_FORMAT: "json" }, { onStart: (p) => (pid = p) }).finally(() => (ended = true));
    while (!ready()) {
        if (ended) {
            throw new Error(`ended before the moment to act:\n${(await run).stderr}`);
        }
        await new Promise((r) => setTimeout(r, 10));
    }
    const at = Date.now();
    act(pid);
    const r = await run;
    return { ...r, ms: Date.now() - at };
}

const streaming = (dir: string) => () => files(dir).some((f) => f.size > 2 * 1024 * 1024);

describe("a job-compressed backup stopped mid-stream", () => {
    it("SIGTERM while the rebuilt archive streams: exits 143 promptly, nothing left", async () => {
        const dir = path.join(work, "term");
        mkdirSync(dir);
        const r = await runUntil(dir, streaming(dir), (pid) => process.kill(pid, "SIGTERM"));
        expect(r.code, r.stderr).toBe(143);
        expect(r.ms).toBeLessThan(15_000);
        expect(logLines(r.stderr).at(-1)?.msg).toMatch(/stopped by SIGTERM before it finished: nothing was committed/);
        expect(files(dir).filter((f) => !f.name.startsWith("."))).toEqual([]);
    }, 120_000);

    it("pg_dump's connection killed mid-stream: fails with pg_dump's error, nothing left", async () => {
        const dir = path.join(work, "kill");
        mkdirSync(dir);
        let killed = "";
        const copying = () => pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %' AND pid <> pg_backend_pid()") === "1";
        const r = await runUntil(dir, copying, () => {
            killed = pg.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'COPY %' AND pid <> pg_backend_pid()");
        });
        expect(killed).toContain("t");
        expect(r.code, r.stderr).not.toBe(0);
        expect(r.ms).toBeLessThan(15_000);
        expect(r.stderr).toMatch(/pg_dump/);
        expect(files(dir).filter((f) => !f.name.startsWith("."))).toEqual([]);
        console.log(logLines(r.stderr).at(-1)?.msg);
    }, 120_000);
});
