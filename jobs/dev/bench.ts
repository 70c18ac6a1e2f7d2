/**
 * npm run bench [-- --size-mb 500 --runs 3 --scales 1,4]      the full run (record it in BENCHMARKS.md)
 * npm run bench -- --quick                                     a small, fast run for iteration
 *
 * What a user pays for a kx-backup backup, against plain `pg_dump -Fc -f FILE`, measured in one
 * process of measurement with every variant alternated run by run (so load from anything else
 * on the machine lands on all of them): for a trade-like database at a base size and multiples
 * of it,
 *   - plain `pg_dump -Fc -f FILE` (the baseline, 1.00);
 *   - `kx-backup backup` to a local directory, S3 (s3rver) and Azure Blob (azurite) at once, as in
 *     production, run the way the job image runs it (the Dockerfile's node flags): wall time,
 *     peak RSS of the job process (threads included);
 *   - the runbook's own pipeline: `pg_dump -Fc -f FILE`, then upload to S3, then to Azure, one
 *     after another (the SDKs' default uploads, in a separate process);
 *   - `kx-backup backup --format directory --jobs 2` to the same three targets;
 *   - tuples read on the source during each backup (`pg_stat_user_tables` seq_tup_read +
 *     idx_tup_fetch, delta) divided by the live tuples: plain pg_dump reads each row once (1.00);
 *   - `kx-backup verify` and `kx-backup restore` of that backup against `pg_restore -j2` of the
 *     same dump into a fresh database, on the same server.
 * Every command starts after a `sync`, so none pays for writing back another's dirty pages.
 * Prints Markdown to stdout (for BENCHMARKS.md), progress to stderr.
 */
import { execFileSync, spawn } from "child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import { checkRanAsImage, repositoryNodeFlags } from "./nodeFlags";
import { AzureEmulator, PG_BIN, PgCluster, S3Emulator, startAzurite, startPostgres, startS3, verifyServerEnv } from "./services";

/** The repository root (this file runs as dist/bench.js). */
const ROOT = path.resolve(__dirname, "..");
const CLI = path.join(ROOT, "dist", "kx-backup.js");

interface Run {
    ms: number;
    peakRssMiB?: number;
    /** CPU time of the command and every process it waited for (pg_dump under kx-backup), user + system. */
    cpuMs: number;
    /** CPU time elsewhere meanwhile: the PostgreSQL server (every backend), s3rver, azurite. */
    elsewhereCpuMs?: Elsewhere;
    /** kx-backup's own account of where the time went (backup.done's phasesMs). */
    phasesMs?: Record<string, number>;
    /** The node flags kx-backup says it ran with (backup.start's nodeFlags). */
    nodeFlags?: string[];
}

export interface Elsewhere {
    server: number;
    s3: number;
    azure: number;
}

/** CPU time (user + system, its waited-for children included) of one process, from /proc; 0 once gone. */
function processCpuMs(pid: number | undefined): number {
    if (!pid) {
        return 0;
    }
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / CLOCK_TICKS;
    } catch {
        return 0;
    }
}

/** The postmaster and its live children (backends, background workers); exited backends are in its cutime. */
function serverCpuMs(postmaster: number): number {
    let total = processCpuMs(postmaster);
    for (const entry of readdirSync("/proc")) {
        const pid = Number(entry);
        if (!pid || pid === postmaster) {
            continue;
        }
        try {
            const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
            if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === postmaster) {
                total += processCpuMs(pid);
            }
        } catch {
            // Gone meanwhile.
        }
    }
    return total;
}

/** The first JSON log line of `event` (kx-backup's `event` field); undefined when there is none, or it does not parse. */
function logEvent(stderr: string, event: string): Record<string, unknown> | undefined {
    const line = stderr.split("\n").find((l) => l.includes(`"${event}"`));
    try {
        return line === undefined ? undefined : JSON.parse(line);
    } catch {
        return undefined;
    }
}

/** backup.start's nodeFlags from a JSON log: how kx-backup was really run. */
export function nodeFlagsFromLog(stderr: string): string[] | undefined {
    const flags = logEvent(stderr, "backup.start")?.nodeFlags;
    return Array.isArray(flags) ? flags : undefined;
}

/** backup.done's phasesMs from a JSON log. */
export function phasesFromLog(stderr: string): Record<string, number> | undefined {
    return logEvent(stderr, "backup.done")?.phasesMs as Record<string, number> | undefined;
}

/**
 * CPU time of this process's waited-for children, from /proc (cutime + cstime): a command's
 * descendants are folded into it when it waits for them, so the delta around one command is
 * its whole tree's. The PostgreSQL server and the emulators are not children: excluded.
 */
function childrenCpuMs(): number {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 16 and 17 of proc(5) (cutime, cstime); the split starts at field 3.
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

export function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Set once the services run: CPU elsewhere, sampled around every timed command. */
let sampleElsewhere: (() => Elsewhere) | undefined;

/** Runs a command; for node programs, a preload reports the process's own peak RSS. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, rssFile?: string): Promise<Run> {
    // Each variant starts with no dirty pages left by the one before (a restore's database writes,
    // the stores' files): it pays for writing back its own bytes, not for another's.
    execFileSync("sync");
    return new Promise((resolve, reject) => {
        const start = process.hrtime.bigint();
        const cpuBefore = childrenCpuMs();
        const elsewhereBefore = sampleElsewhere?.();
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
            const after = sampleElsewhere?.();
            const elsewhereCpuMs = after && elsewhereBefore
                ? { server: after.server - elsewhereBefore.server, s3: after.s3 - elsewhereBefore.s3, azure: after.azure - elsewhereBefore.azure }
                : undefined;
            resolve({ ms, peakRssMiB, cpuMs: childrenCpuMs() - cpuBefore, elsewhereCpuMs, phasesMs: phasesFromLog(err), nodeFlags: nodeFlagsFromLog(err) });
        });
    });
}

const UPLOAD_SCRIPT = `
// The runbook's copy step (aws s3 cp, then the Azure upload), with the SDKs' default uploads.
const { createReadStream } = require("fs");
const { S3Client } = require("@aws-sdk/client-s3");
const { Upload } = require("@aws-sdk/lib-storage");
const { BlobServiceClient } = require("@azure/storage-blob");
const [file, key] = process.argv.slice(2);
(async () => {
    const s3 = new S3Client({ endpoint: process.env.BACKUP_S3_ENDPOINT, forcePathStyle: true, region: "us-east-1",
        credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
        requestChecksumCalculation: "WHEN_REQUIRED" });
    await new Upload({ client: s3, params: { Bucket: process.env.BACKUP_S3_BUCKET, Key: key, Body: createReadStream(file) } }).done();
    const blob = BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING)
        .getContainerClient(process.env.BACKUP_AZURE_CONTAINER).getBlockBlobClient(key);
    await blob.uploadFile(file);
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** Tuples read from user tables so far (sequential scans' tuples + index fetches), and live tuples. */
function tupleCounters(pg: PgCluster, db: string): { read: number; live: number } {
    const [read, live] = pg.psql(db, "SELECT sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), sum(n_live_tup) FROM pg_stat_user_tables").split("|").map(Number);
    return { read, live };
}

/** Waits for finished backends' statistics to reach the cumulative view (flushed at exit, at most every second). */
async function settledStats(): Promise<void> {
    await new Promise((r) => setTimeout(r, 1500));
}

function machine(): string[] {
    const sh = (cmd: string, args: string[]) => {
        try {
            return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
        } catch {
            return "";
        }
    };
    const lscpu = sh("lscpu", []);
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(lscpu)?.[1] ?? "?";
    const disk = sh("df", ["-h", "--output=source,fstype,size,avail", os.tmpdir()]).split("\n")[1]?.trim().replace(/\s+/g, " ");
    const version = (pkg: string) => {
        try {
            return JSON.parse(readFileSync(path.join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
        } catch {
            return "?";
        }
    };
    return [
        `- CPU: ${field("Model name")}, ${field("CPU\\(s\\)")} vCPU (${field("Thread\\(s\\) per core")} thread per core), ${field("Hypervisor vendor")} guest`,
        `- Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB; temp disk: ${disk} (${os.tmpdir()})`,
        `- ${os.type()} ${os.release()}; Node ${process.version}; ${sh(path.join(PG_BIN, "pg_dump"), ["--version"])}; s3rver ${version("s3rver")}, azurite ${version("azurite")}`,
        `- Load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(", ")} (other work shares these cores: every variant is alternated within each run)`,
    ];
}

export interface ScaleResult {
    label: string;
    plain: number[];
    plainCpu: number[];
    job: Run[];
    runbook: number[];
    dir: Run[];
    pgRestore: number[];
    verify: number[];
    restore: number[];
    reads: { plain: number[]; job: number[] };
}

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: {
            "size-mb": { type: "string" },
            runs: { type: "string" },
            scales: { type: "string" },
            quick: { type: "boolean", default: false },
        },
    });
    const quick = values.quick || process.env.KX_BENCH_QUICK === "1";
    const sizeMb = Number(values["size-mb"] ?? (quick ? 60 : 500));
    const runs = Number(values.runs ?? (quick ? 1 : 3));
    const scales = String(values.scales ?? (quick ? "1" : "1,4")).split(",").map(Number);
    const nodeFlags = repositoryNodeFlags(ROOT);
    const work = mkdtempSync(path.join(os.tmpdir(), "kx-bench-"));
    const preload = path.join(work, "rss.js");
    writeFileSync(preload, `process.on("exit", () => require("fs").writeFileSync(process.env.KX_RSS_FILE, String(process.resourceUsage().maxRSS)));\n`);
    const uploader = path.join(work, "upload.js");
    writeFileSync(uploader, UPLOAD_SCRIPT);

    const lines: string[] = [];
    const log = (s: string) => process.stderr.write(`${s}\n`);
    let pg: PgCluster | undefined;
    let s3: S3Emulator | undefined;
    let azure: AzureEmulator | undefined;
    const stop = async () => {
        pg?.remove();
        await Promise.all([s3?.stop(), azure?.stop()]);
        rmSync(work, { recursive: true, force: true });
    };
    const onSignal = () => void stop().finally(() => process.exit(130));
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    const results: ScaleResult[] = [];
    try {
        // The stores stand in for remote services: their own processes, at the lowest priority, so
        // they take only CPU the job leaves idle (a remote store costs the pod none). Their CPU is
        // still measured and reported.
        [pg, s3, azure] = await Promise.all([startPostgres(), startS3("backups", { nice: 19 }), startAzurite("backups", { nice: 19 })]);
        const postmaster = Number(readFileSync(path.join(pg.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
        const [s3pid, azurePid] = [s3.pid, azure.pid];
        sampleElsewhere = () => ({ server: serverCpuMs(postmaster), s3: processCpuMs(s3pid), azure: processCpuMs(azurePid) });
        lines.push(...machine());
        lines.push(`- Runs per variant: ${runs}, alternated; kx-backup runs as the image runs it: \`node ${[...nodeFlags, "kx-backup.js"].join(" ")}\`; ` +
            "s3rver and azurite in processes of their own at nice 19 (stand-ins for remote stores: they take only CPU left idle; their CPU is reported), PostgreSQL 15 (fsync off) on the same cores.");
        lines.push("");
        for (const scale of scales) {
            const db = `bench_${scale}x`;
            const target = sizeMb * scale;
            log(`creating ${db} (~${target} MB)…`);
            pg.psql("postgres", `CREATE DATABASE ${db}`);
            // Trade-like rows: numbers, timestamps, short text; compresses like real data (not all zeros).
            const rows = Math.round((target * 1024 * 1024) / 150);
            pg.psql(db, "CREATE TABLE trades (id bigint, pair text, price numeric(20,8), qty numeric(20,8), side text, at timestamptz, ref text)");
            const batch = 1_000_000;
            for (let from = 1; from <= rows; from += batch) {
                const to = Math.min(rows, from + batch - 1);
                pg.psql(db, `INSERT INTO trades SELECT g, (ARRAY['BTC-USDT','ETH-USDT','SOL-USDT'])[1 + g % 3], random() * 60000, random() * 5, CASE WHEN g % 2 = 0 THEN 'buy' ELSE 'sell' END, '2026-01-01'::timestamptz + g * interval '1 second', md5(g::text) FROM generate_series(${from}, ${to}) g`);
            }
            pg.psql(db, "CREATE TABLE trades_b AS SELECT * FROM trades WHERE id % 2 = 0");
            pg.psql(db, "VACUUM ANALYZE");
            const bytes = Number(pg.psql(db, "SELECT pg_database_size(current_database())"));
            const env = { ...process.env, ...pg.env(db) };
            const targetsEnv = { ...s3.env(), ...azure.env() };
            const r: ScaleResult = { label: `${(bytes / 1024 ** 2).toFixed(0)} MiB`, plain: [], plainCpu: [], job: [], runbook: [], dir: [], pgRestore: [], verify: [], restore: [], reads: { plain: [], job: [] } };
            // A warm-up pg_dump: the first read after loading would otherwise be the cold one.
            await timed(path.join(PG_BIN, "pg_dump"), ["-Fc", "-f", path.join(work, "warm.dump")], env);
            rmSync(path.join(work, "warm.dump"), { force: true });
            for (let i = 0; i < runs; i++) {
                const file = path.join(work, "plain.dump");
                const local = path.join(work, "local");
                const rssFile = path.join(work, "rss");
                const jobEnv = { ...env, ...targetsEnv, BACKUP_LOCAL_DIR: local, BACKUP_S3_PREFIX: `bench-${scale}-${i}`, BACKUP_AZURE_PREFIX: `bench-${scale}-${i}`, BACKUP_LOG_FORMAT: "json", KX_RSS_FILE: rssFile };

                // 1. plain pg_dump, with its reads of the source.
                let before = tupleCounters(pg, db);
                const plain = await timed(path.join(PG_BIN, "pg_dump"), ["-Fc", "-f", file], env);
                r.plain.push(plain.ms);
                r.plainCpu.push(plain.cpuMs);
                await settledStats();
                let after = tupleCounters(pg, db);
                r.reads.plain.push((after.read - before.read) / after.live);

                // 2. kx-backup to local + S3 + Azure, with its reads of the source and its peak memory.
                before = tupleCounters(pg, db);
                r.job.push(await timed(process.execPath, [...nodeFlags, "--require", preload, CLI, "backup", "--no-prune"], jobEnv, rssFile));
                checkRanAsImage(r.job.at(-1)!.nodeFlags, nodeFlags);
                await settledStats();
                after = tupleCounters(pg, db);
                r.reads.job.push((after.read - before.read) / after.live);
                const name = readdirSync(path.join(local, db)).find((f) => f.endsWith(".dump"))!;

                // 3. the runbook's pipeline: dump to a file, then S3, then Azure.
                const start = Date.now();
                await timed(path.join(PG_BIN, "pg_dump"), ["-Fc", "-f", path.join(work, "runbook.dump")], env);
                await timed(process.execPath, [uploader, path.join(work, "runbook.dump"), `runbook-${scale}-${i}/${db}.dump`], { ...process.env, ...targetsEnv, NODE_PATH: path.join(ROOT, "node_modules") });
                r.runbook.push(Date.now() - start);
                rmSync(path.join(work, "runbook.dump"), { force: true });

                // 4. directory format, 2 jobs, same three targets.
                r.dir.push(await timed(process.execPath, [...nodeFlags, "--require", preload, CLI, "backup", "--no-prune", "--format", "directory", "--jobs", "2"],
                    { ...jobEnv, BACKUP_S3_PREFIX: `bench-dir-${scale}-${i}`, BACKUP_AZURE_PREFIX: `bench-dir-${scale}-${i}` }, rssFile));
                checkRanAsImage(r.dir.at(-1)!.nodeFlags, nodeFlags);

                // 5. pg_restore -j2 of the plain dump into a fresh database, then verify and restore of the kx-backup backup.
                pg.psql("postgres", "DROP DATABASE IF EXISTS bench_restored");
                pg.psql("postgres", "CREATE DATABASE bench_restored");
                r.pgRestore.push((await timed(path.join(PG_BIN, "pg_restore"), ["-j", "2", "-d", "bench_restored", file], { ...env, PGDATABASE: "bench_restored" })).ms);
                pg.psql("postgres", "DROP DATABASE bench_restored");
                r.verify.push((await timed(process.execPath, [...nodeFlags, CLI, "verify", "--database", db, "--backup", name, "--from", "local"], { ...jobEnv, ...verifyServerEnv(pg) })).ms);
                r.restore.push((await timed(process.execPath, [...nodeFlags, CLI, "restore", "--database", db, "--into", "bench_restored", "--backup", name, "--from", "local"], jobEnv)).ms);
                pg.psql("postgres", "DROP DATABASE IF EXISTS bench_restored");
                rmSync(file, { force: true });
                rmSync(local, { recursive: true, force: true });
                const f = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
                log(`  run ${i + 1}: pg_dump ${f(r.plain[i])}, kx-backup ${f(r.job[i].ms)} (${r.job[i].peakRssMiB!.toFixed(0)} MiB), runbook ${f(r.runbook[i])}, ` +
                    `directory -j2 ${f(r.dir[i].ms)} (${r.dir[i].peakRssMiB!.toFixed(0)} MiB), pg_restore -j2 ${f(r.pgRestore[i])}, verify ${f(r.verify[i])}, restore ${f(r.restore[i])}; ` +
                    `reads ${r.reads.plain[i].toFixed(2)} / ${r.reads.job[i].toFixed(2)}; CPU ${f(r.plainCpu[i])} / ${f(r.job[i].cpuMs)} / ${f(r.dir[i].cpuMs)}; load ${os.loadavg()[0].toFixed(2)}`);
            }
            results.push(r);
            pg.psql("postgres", `DROP DATABASE ${db}`);
        }
    } finally {
        await stop();
    }
    lines.push(...report(results));
    process.stdout.write(`${lines.join("\n")}\n`);
}

/** The Markdown tables: medians and ratios to plain pg_dump of the same run, then every raw figure. */
export function report(results: ScaleResult[]): string[] {
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const ratio = (a: number, b: number) => (a / b).toFixed(3);
    const out: string[] = [];
    out.push("| database | plain `pg_dump -Fc -f` | kx-backup, 3 targets | ratio | peak RSS | runbook pipeline (dump, then S3, then Azure) | ratio | directory `-j2`, 3 targets | ratio | peak RSS |");
    out.push("|---|---|---|---|---|---|---|---|---|---|");
    for (const r of results) {
        const p = median(r.plain);
        const k = median(r.job.map((x) => x.ms));
        const rb = median(r.runbook);
        const d = median(r.dir.map((x) => x.ms));
        out.push(`| ${r.label} | ${s(p)} | ${s(k)} | ${ratio(k, p)} | ${Math.max(...r.job.map((x) => x.peakRssMiB ?? 0)).toFixed(0)} MiB | ${s(rb)} | ${ratio(rb, p)} | ${s(d)} | ${ratio(d, p)} | ${Math.max(...r.dir.map((x) => x.peakRssMiB ?? 0)).toFixed(0)} MiB |`);
    }
    out.push("");
    out.push("CPU on the job's side (the command and its `pg_dump`; the server and the emulators excluded): what a backup pod pays, where the stores are remote.");
    out.push("");
    out.push("| database | plain `pg_dump -Fc -f` CPU | kx-backup CPU | ratio | directory `-j2` CPU | ratio |");
    out.push("|---|---|---|---|---|---|");
    for (const r of results) {
        const p = median(r.plainCpu);
        const k = median(r.job.map((x) => x.cpuMs));
        const d = median(r.dir.map((x) => x.cpuMs));
        out.push(`| ${r.label} | ${s(p)} | ${s(k)} | ${ratio(k, p)} | ${s(d)} | ${ratio(d, p)} |`);
    }
    out.push("");
    out.push("Where kx-backup's time goes (its own `phasesMs`, medians) against `pg_dump` alone; and CPU elsewhere meanwhile (medians): the server, and the stores a real deployment does not run on the job's cores.");
    out.push("");
    out.push("| database | plain `pg_dump` | kx-backup: prepare | dump | upload (tail) | globals | manifest | CPU: server | s3rver | azurite |");
    out.push("|---|---|---|---|---|---|---|---|---|---|");
    for (const r of results) {
        const phase = (name: string) => {
            const xs = r.job.map((x) => x.phasesMs?.[name]).filter((x): x is number => x !== undefined);
            return xs.length > 0 ? s(median(xs)) : "?";
        };
        const cpu = (k: keyof Elsewhere) => {
            const xs = r.job.map((x) => x.elsewhereCpuMs?.[k]).filter((x): x is number => x !== undefined);
            return xs.length > 0 ? s(median(xs)) : "?";
        };
        out.push(`| ${r.label} | ${s(median(r.plain))} | ${phase("prepare")} | ${phase("dump")} | ${phase("upload")} | ${phase("globals")} | ${phase("manifest")} | ${cpu("server")} | ${cpu("s3")} | ${cpu("azure")} |`);
    }
    out.push("");
    out.push("| database | tuples read per live tuple: plain pg_dump | kx-backup | `pg_restore -j2` into a fresh database | kx-backup verify | ratio | kx-backup restore | ratio |");
    out.push("|---|---|---|---|---|---|---|---|");
    for (const r of results) {
        const pr = median(r.pgRestore);
        out.push(`| ${r.label} | ${median(r.reads.plain).toFixed(2)} | ${median(r.reads.job).toFixed(2)} | ${s(pr)} | ${s(median(r.verify))} | ${ratio(median(r.verify), pr)} | ${s(median(r.restore))} | ${ratio(median(r.restore), pr)} |`);
    }
    out.push("");
    out.push("Raw runs (seconds; peak RSS in MiB; CPU seconds): pg_dump / kx-backup (RSS) / runbook / directory -j2 (RSS) / pg_restore -j2 / verify / restore; CPU pg_dump / kx-backup / directory -j2");
    out.push("");
    for (const r of results) {
        const rows = r.plain.map((_, i) => `${(r.plain[i] / 1000).toFixed(1)} / ${(r.job[i].ms / 1000).toFixed(1)} (${r.job[i].peakRssMiB?.toFixed(0)}) / ${(r.runbook[i] / 1000).toFixed(1)} / ` +
            `${(r.dir[i].ms / 1000).toFixed(1)} (${r.dir[i].peakRssMiB?.toFixed(0)}) / ${(r.pgRestore[i] / 1000).toFixed(1)} / ${(r.verify[i] / 1000).toFixed(1)} / ${(r.restore[i] / 1000).toFixed(1)}; ` +
            `CPU ${(r.plainCpu[i] / 1000).toFixed(1)} / ${(r.job[i].cpuMs / 1000).toFixed(1)} / ${(r.dir[i].cpuMs / 1000).toFixed(1)}`);
        out.push(`- ${r.label}: ${rows.join("; ")}`);
    }
    return out;
}

if (require.main === module && existsSync(CLI)) {
    main().catch((e) => {
        process.stderr.write(`bench failed: ${(e as Error).message}\n`);
        process.exitCode = 1;
    });
} else if (require.main === module) {
    process.stderr.write(`bench: ${CLI} is missing: run it with npm run bench (which builds first)\n`);
    process.exitCode = 2;
}
