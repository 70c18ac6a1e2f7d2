/**
 * npm run bench [-- --size-mb 500 --runs 3 --scales 1,4]
 *
 * In one process of measurement, alternates plain `pg_dump -Fc -f FILE` with `kx-backup backup`
 * to local + the S3 emulator, several times, at a base size and at multiples of it; prints the
 * median wall-time ratio and kx-backup's peak RSS, and the directory format with 2 jobs against
 * the same plain pg_dump. Writes the figures as Markdown to stdout (for BENCHMARKS.md).
 */
import { execFileSync, spawn } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import { PG_BIN, startPostgres, startS3 } from "./services";

const ROOT = path.resolve(__dirname, "..");
const CLI = path.join(ROOT, "dist", "kx-backup.js");

interface Run {
    ms: number;
    peakRssMiB?: number;
}

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs a command; for node programs, a preload reports the process's own peak RSS. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, rssFile?: string): Promise<Run> {
    return new Promise((resolve, reject) => {
        const start = process.hrtime.bigint();
        const child = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        child.stderr.on("data", (d) => (err += d));
        child.on("close", (code) => {
            const ms = Number(process.hrtime.bigint() - start) / 1e6;
            if (code !== 0) {
                reject(new Error(`${path.basename(cmd)} ${args.join(" ")} exited ${code}: ${err.slice(-2000)}`));
                return;
            }
            const peakRssMiB = rssFile ? Number(readFileSync(rssFile, "utf8")) / 1024 : undefined;
            resolve({ ms, peakRssMiB });
        });
    });
}

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: {
            "size-mb": { type: "string", default: "500" },
            runs: { type: "string", default: "3" },
            scales: { type: "string", default: "1,4" },
        },
    });
    const sizeMb = Number(values["size-mb"]);
    const runs = Number(values.runs);
    const scales = String(values.scales).split(",").map(Number);
    const work = mkdtempSync(path.join(os.tmpdir(), "kx-bench-"));
    const preload = path.join(work, "rss.js");
    writeFileSync(preload, `process.on("exit", () => require("fs").writeFileSync(process.env.KX_RSS_FILE, String(process.resourceUsage().maxRSS)));\n`);

    const pg = await startPostgres();
    const s3 = await startS3();
    const onSignal = () => {
        pg.remove();
        void s3.stop().finally(() => process.exit(130));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    const lines: string[] = [];
    const log = (s: string) => {
        process.stderr.write(`${s}\n`);
    };
    try {
        const cpu = os.cpus()[0]?.model ?? "unknown CPU";
        lines.push(`Machine: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, ${os.platform()} ${os.release()}, Node ${process.version}, ${execFileSync(path.join(PG_BIN, "pg_dump"), ["--version"]).toString().trim()}`);
        lines.push(`Date: ${new Date().toISOString().slice(0, 10)}; runs per variant: ${runs}, alternated; S3 target: s3rver on loopback in the benchmark process.`);
        lines.push("");
        lines.push("| database size | plain `pg_dump -Fc` (median) | `kx-backup backup` local+S3 (median) | ratio | kx-backup peak RSS | `--format directory --jobs 2` local+S3 (median) | ratio |");
        lines.push("|---|---|---|---|---|---|---|");
        for (const scale of scales) {
            const db = `bench_${scale}x`;
            const target = sizeMb * scale;
            log(`creating ${db} (~${target} MB)…`);
            pg.psql("postgres", `CREATE DATABASE ${db}`);
            // Trade-like rows: numbers, timestamps, short text; compresses like real data (not all zeros).
            const rows = Math.round((target * 1024 * 1024) / 150);
            pg.psql(db, `CREATE TABLE trades (id bigint, pair text, price numeric(20,8), qty numeric(20,8), side text, at timestamptz, ref text)`);
            const batch = 1_000_000;
            for (let from = 1; from <= rows; from += batch) {
                const to = Math.min(rows, from + batch - 1);
                pg.psql(db, `INSERT INTO trades SELECT g, (ARRAY['BTC-USDT','ETH-USDT','SOL-USDT'])[1 + g % 3], random() * 60000, random() * 5, CASE WHEN g % 2 = 0 THEN 'buy' ELSE 'sell' END, '2026-01-01'::timestamptz + g * interval '1 second', md5(g::text) FROM generate_series(${from}, ${to}) g`);
            }
            pg.psql(db, "CREATE TABLE trades_b AS SELECT * FROM trades WHERE id % 2 = 0");
            pg.psql(db, "VACUUM ANALYZE");
            const bytes = Number(pg.psql(db, "SELECT pg_database_size(current_database())"));
            const env = { ...process.env, ...pg.env(db) };
            const plain: number[] = [];
            const job: Run[] = [];
            const dir: number[] = [];
            for (let i = 0; i < runs; i++) {
                const file = path.join(work, "plain.dump");
                plain.push((await timed(path.join(PG_BIN, "pg_dump"), ["-Fc", "-f", file], env)).ms);
                rmSync(file, { force: true });
                const local = path.join(work, "local");
                const rssFile = path.join(work, "rss");
                const jobEnv = { ...env, ...s3.env(), BACKUP_LOCAL_DIR: local, BACKUP_S3_PREFIX: `bench-${i}`, BACKUP_LOG_FORMAT: "json", KX_RSS_FILE: rssFile };
                job.push(await timed(process.execPath, ["--require", preload, CLI, "backup", "--no-prune"], jobEnv, rssFile));
                rmSync(local, { recursive: true, force: true });
                dir.push((await timed(process.execPath, [CLI, "backup", "--no-prune", "--format", "directory", "--jobs", "2"], { ...jobEnv, BACKUP_S3_PREFIX: `bench-dir-${i}` })).ms);
                rmSync(local, { recursive: true, force: true });
                log(`  run ${i + 1}: pg_dump ${plain[i].toFixed(0)} ms, kx-backup ${job[i].ms.toFixed(0)} ms (${job[i].peakRssMiB?.toFixed(0)} MiB), directory -j2 ${dir[i].toFixed(0)} ms`);
            }
            const p = median(plain);
            const k = median(job.map((r) => r.ms));
            const d = median(dir);
            const peak = Math.max(...job.map((r) => r.peakRssMiB ?? 0));
            lines.push(`| ${(bytes / 1024 ** 2).toFixed(0)} MiB | ${(p / 1000).toFixed(2)} s | ${(k / 1000).toFixed(2)} s | ${(k / p).toFixed(3)} | ${peak.toFixed(0)} MiB | ${(d / 1000).toFixed(2)} s | ${(d / p).toFixed(3)} |`);
            pg.psql("postgres", `DROP DATABASE ${db}`);
        }
    } finally {
        pg.remove();
        await s3.stop();
        rmSync(work, { recursive: true, force: true });
    }
    process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((e) => {
    process.stderr.write(`bench failed: ${(e as Error).message}\n`);
    process.exitCode = 1;
});
