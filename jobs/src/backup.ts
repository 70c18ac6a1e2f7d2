/**
 * `kx-backup backup`: one pass of pg_dump, hashed and streamed to every target at once, then
 * committed with a manifest on each. On any failure: every upload is aborted, partial objects
 * are removed, and no manifest is written anywhere.
 */
import { ChildProcess } from "child_process";
import { rmSync } from "fs";
import * as path from "path";
import { Readable } from "stream";
import { Client } from "pg";
import { connect, databaseSize, dbnameArg, exportSnapshot, libpqEnv, serverInfo, TableRef } from "./db";
import { DumpStreamCounter, RecompressSettings } from "./dumpstream";
import { commitManifest, discardArtifact, streamToTargets } from "./commit";
import { backupGlobals, removeGlobals } from "./globals";
import { failureLine, formatBytes, formatDuration, JobError, Logger } from "./log";
import { BackupPurpose, BackupScope, Manifest, MANIFEST_KIND, tableLabel } from "./manifest";
import { parseTableName } from "./restore/toc";
import { ArtifactExtension, backupKey, checkDatabaseName } from "./naming";
import { chooseTools, discoverTools } from "./pgtools";
import { scratchDir } from "./scratch";
import { Settings } from "./settings";
import { Target } from "./targets";
import { anomalyReasons, AnomalyThresholds } from "./anomaly";
import { BackupEntry, newestGoodFull } from "./catalog";
import { killGroup, onStop, spawnManaged, stopping, throwIfStopping } from "./shutdown";

export interface BackupOptions {
    schemaOnly: boolean;
    dataOnly: boolean;
    tables: string[];
    /** Why it is taken; default `manual`. */
    purpose?: BackupPurpose;
    /** A restore's safety dump: stored in `<db>/safety/`, purpose `safety`, never `latest`. */
    safety?: boolean;
    /** The anomaly guard's thresholds (full backups only); `accept` records a known drop as the new baseline. */
    anomaly?: AnomalyThresholds & { accept: boolean };
    /** Injected for tests; defaults to the current time. */
    now?: Date;
}

/** What a backup with these options holds. Pure. */
export function backupScope(o: Pick<BackupOptions, "schemaOnly" | "dataOnly" | "tables">): BackupScope {
    return o.schemaOnly ? "schema-only" : o.dataOnly ? "data-only" : o.tables.length > 0 ? "tables" : "full";
}

export interface BackupResult {
    key: string;
    manifest: Manifest;
}

const EXTENSIONS: Record<Settings["format"], ArtifactExtension> = {
    custom: "dump",
    directory: "dump.tar",
    plain: "sql",
};

/**
 * pg_dump majors whose uncompressed custom archive (archive 1.14) the job rebuilds as the zlib
 * archive pg_dump would write: the versions whose pg_restore the tests restore it with. Newer
 * pg_dump (archive 1.15+, a compression-algorithm byte in the header) compresses itself until
 * their pg_restore has read a rebuilt archive in the tests.
 */
export const JOB_COMPRESSION_MAJORS = { min: 12, max: 15 } as const;

/**
 * Whether the job compresses the dump (BACKUP_COMPRESS_THREADS, custom format, a pg_dump it was
 * tested with) and how: zlib at pg_dump's own default level. Pure.
 */
export function jobCompression(s: Pick<Settings, "format" | "compressThreads">, pgDumpMajor: number): RecompressSettings | undefined {
    if (s.format !== "custom" || s.compressThreads === 0) {
        return undefined;
    }
    if (pgDumpMajor < JOB_COMPRESSION_MAJORS.min || pgDumpMajor > JOB_COMPRESSION_MAJORS.max) {
        return undefined;
    }
    return { level: -1, threads: s.compressThreads };
}

/** pg_dump's arguments for a format and the runbook's variants. Pure. */
export function pgDumpArgs(s: Settings, o: BackupOptions, snapshot: string | undefined, out: { dir?: string; uncompressed?: boolean } = {}): string[] {
    const args = ["--no-password", "--dbname", dbnameArg(s.pgDatabase!)];
    if (snapshot) {
        args.push("--snapshot", snapshot);
    }
    if (s.format === "custom") {
        args.push("--format", "custom");
        if (out.uncompressed) {
            // The job compresses it, on several threads (dumpstream/recompress.ts).
            args.push("--compress", "0");
        }
    } else if (s.format === "plain") {
        args.push("--format", "plain");
    } else {
        args.push("--format", "directory", "--jobs", String(s.jobs), "--file", out.dir!);
    }
    if (o.schemaOnly) {
        args.push("--schema-only");
    }
    if (o.dataOnly) {
        args.push("--data-only");
    }
    for (const t of o.tables) {
        args.push("--table", t);
    }
    if (o.tables.length > 0) {
        // Every pattern must match something: a mistyped or mis-quoted name fails the backup
        // instead of silently leaving that table out.
        args.push("--strict-names");
    }
    return args;
}

/**
 * Milliseconds spent in each phase of a run, in order: each mark ends the phase of its name
 * (a phase marked twice keeps its first end). `prepare`: startup to pg_dump running; `dump`:
 * pg_dump's own run; `upload`: what was still in flight when it exited, committed on every
 * target; `globals`, `manifest`: the writes after.
 */
export class PhaseClock {
    private last: number;
    private readonly spans: [string, number][] = [];
    constructor(private readonly now: () => number = () => performance.now()) {
        this.last = now();
    }
    mark(phase: string): void {
        if (this.spans.some(([name]) => name === phase)) {
            return;
        }
        const t = this.now();
        this.spans.push([phase, Math.round(t - this.last)]);
        this.last = t;
    }
    durations(): Record<string, number> {
        return Object.fromEntries(this.spans);
    }
}

/** The last lines a child printed, bounded, for the one-line failure message. */
class StderrTail {
    private lines: string[] = [];
    constructor(child: ChildProcess) {
        let buf = "";
        child.stderr?.on("data", (d: Buffer) => {
            buf += d.toString();
            const parts = buf.split("\n");
            buf = parts.pop() ?? "";
            this.lines.push(...parts.filter((l) => l.trim() !== ""));
            this.lines = this.lines.slice(-20);
        });
    }
    last(): string {
        return failureLine(this.lines.join("\n"));
    }
}

function waitExit(child: ChildProcess): Promise<number> {
    return new Promise((resolve) => {
        if (child.exitCode !== null) {
            resolve(child.exitCode);
            return;
        }
        child.once("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
}

/** What an operator should do about a pg_dump failure. */
export function pgDumpHint(line: string): string {
    if (/password authentication failed/i.test(line)) {
        return "check PGPASSWORD (the database's Secret)";
    }
    if (/connection refused|could not connect|server closed the connection|terminating connection|no connection to the server/i.test(line)) {
        return "the server went away during the dump: check the database and run the backup again";
    }
    if (/server version mismatch|aborting because of server version mismatch/i.test(line)) {
        return "use pg_dump of at least the server's major version";
    }
    if (/permission denied/i.test(line)) {
        return "the backup role needs read access to every dumped object";
    }
    return "see the database log, then run the backup again";
}

export async function runBackup(s: Settings, o: BackupOptions, targets: Target[], log: Logger): Promise<BackupResult> {
    const database = s.pgDatabase;
    if (!database) {
        throw new JobError("no database to back up: set PGDATABASE or --database", 2);
    }
    const badName = checkDatabaseName(database);
    if (badName) {
        throw new JobError(badName, 2);
    }
    if (o.schemaOnly && o.dataOnly) {
        throw new JobError("--schema-only and --data-only exclude each other", 2);
    }
    const started = o.now ?? new Date();
    const key = backupKey(undefined, database, started, EXTENSIONS[s.format], { safety: o.safety });

    // Where the time went, for the summary: startup to pg_dump, pg_dump itself, then the rest.
    const phases = new PhaseClock();
    const client = await connect(s);
    let dump: ChildProcess | undefined;
    let tar: ChildProcess | undefined;
    let workDir: string | undefined;
    let releaseWorkDir = () => undefined as void;
    let globalsWritten = false;
    let committing = false;
    let counter: DumpStreamCounter | undefined;
    // The baseline read runs beside the dump, so a run can fail while it is still listing. A failed
    // run waits for it (it never rejects): its warning then comes before the failure line, and no
    // request of this run outlives that line. A stopped run does not wait (SIGTERM must not hang on
    // a slow listing); once the run is over, the read says nothing more.
    let baselineRead: Promise<Manifest | undefined> = Promise.resolve(undefined);
    let over = false;
    const baselineWarn = (msg: string, fields: Record<string, unknown> = {}) => {
        if (!over) {
            log.warn(msg, fields);
        }
    };
    try {
        const server = await serverInfo(client);
        const tools = chooseTools(discoverTools(s.pgBinDir), server.major, server.version);
        const estimate = await databaseSize(client);
        // The baseline (the newest good full backup) is read while the dump runs, not before it: listing a
        // target of many backups must not delay pg_dump. A listing problem is reported, never a reason to
        // skip the backup (findBaseline does not reject); this run's own backup has no manifest yet, so
        // it cannot be its own baseline.
        baselineRead = o.anomaly && backupScope(o) === "full" && !o.safety ? findBaseline(targets, database, s.signingKey, baselineWarn) : Promise.resolve(undefined);
        baselineRead.catch(() => undefined);
        const snapshot = await exportSnapshot(client);
        if (o.tables.length > 0) {
            const left = partitionsLeftOut(o.tables, await partitionedTables(client));
            if (left.length > 0) {
                throw new JobError(left.join("; "), 2);
            }
        }
        log.info(`backing up ${database}`, {
            event: "backup.start", database, key, format: s.format, server: server.version, pgDump: tools.version,
            targets: targets.map((t) => t.location), estimatedBytes: estimate,
            // How this process was run (the image's ENTRYPOINT flags, or not): memory depends on it.
            node: process.version, nodeFlags: process.execArgv,
        });

        const env = libpqEnv(s);
        let source: Readable;
        let tail: StderrTail;
        // Rows are counted in the dump as it streams out: no second read of any table.
        const recompress = jobCompression(s, tools.major);
        counter = new DumpStreamCounter(s.format, { recompress });
        phases.mark("prepare");
        if (s.format === "directory") {
            // Parallel jobs need a directory; it is archived (tar) as it is streamed out.
            workDir = scratchDir(s.workDir, "kx-dump-");
            const dir = workDir;
            releaseWorkDir = onStop(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
            const outDir = path.join(workDir, "dump");
            dump = spawnManaged(path.join(tools.dir, "pg_dump"), pgDumpArgs(s, o, snapshot, { dir: outDir }), { env, stdio: ["ignore", "ignore", "pipe"] });
            tail = new StderrTail(dump);
            const code = await waitExit(dump);
            if (code !== 0) {
                throw dumpFailure(database, tail.last());
            }
            phases.mark("dump");
            tar = spawnManaged("tar", ["-cf", "-", "-C", outDir, "."], { stdio: ["ignore", "pipe", "pipe"] });
            source = tar.stdout!;
        } else {
            dump = spawnManaged(path.join(tools.dir, "pg_dump"), pgDumpArgs(s, o, snapshot, { uncompressed: recompress !== undefined }), { env, stdio: ["ignore", "pipe", "pipe"] });
            tail = new StderrTail(dump);
            source = dump.stdout!;
        }
        const producer = tar ?? dump;
        const producerOk = waitExit(producer).then((code) => {
            phases.mark("dump");
            if (code !== 0) {
                throw producer === tar ? new JobError(`archiving the directory dump of ${database} failed`) : dumpFailure(database, tail.last());
            }
        });
        // Handled by streamToTargets; this keeps it handled if the streaming fails before awaiting it.
        producerOk.catch(() => undefined);
        const counting = counter.result(producerOk);
        counting.catch(() => undefined);
        const streamed = await streamToTargets(counter.tap(source, producerOk), targets, {
            key,
            expectedBytes: estimate,
            label: database,
            log,
            startedAt: started,
            alongside: [producerOk, counting],
            onFailure: () => {
                for (const child of [dump, tar]) {
                    if (child) {
                        killGroup(child);
                    }
                }
            },
        });
        const counts = await counting;
        phases.mark("upload");
        await client.query("COMMIT");
        const bytes = streamed.bytes;

        const finished = new Date();
        const manifest: Manifest = {
            kind: MANIFEST_KIND,
            manifestVersion: 2,
            database,
            key,
            locations: Object.fromEntries(targets.map((t) => [t.kind, `${t.location.replace(/\/+$/, "")}/${key}`])),
            scope: backupScope(o),
            purpose: o.safety ? "safety" : o.purpose ?? "manual",
            format: s.format,
            container: s.format === "directory" ? "tar" : "pg_dump",
            options: { schemaOnly: o.schemaOnly, dataOnly: o.dataOnly, tables: o.tables, jobs: s.jobs },
            startedAt: started.toISOString(),
            finishedAt: finished.toISOString(),
            durationMs: finished.getTime() - started.getTime(),
            size: bytes,
            sha256: streamed.sha256,
            pgDump: { version: tools.version },
            compressedByJob: recompress,
            server: { version: server.version, versionNum: server.versionNum },
            tables: counts.tables,
            counts: o.schemaOnly ? { method: "none" } : { method: "dump-stream", largeObjects: counts.largeObjects },
            toc: counts.toc,
            targets: targets.map((t) => t.kind),
        };
        const baseline = await baselineRead;
        const reasons = o.anomaly ? anomalyReasons(manifest, baseline, o.anomaly) : [];
        if (reasons.length > 0 && baseline) {
            const finding = { reasons, comparedWith: baseline.key };
            if (o.anomaly?.accept) {
                manifest.acceptedAnomaly = finding;
                log.warn(`backup ${database}: accepted as the new baseline despite: ${reasons.join("; ")}`, { event: "backup.anomaly-accepted", database, key, reasons });
            } else {
                manifest.anomaly = finding;
                log.warn(`backup ${database} is ANOMALOUS against ${baseline.key}: ${reasons.join("; ")}. It is kept and restorable, but never counts as a good backup; ` +
                    "if the drop is expected, take a backup with --accept-anomaly", { event: "backup.anomaly", database, key, reasons });
            }
        }
        // The roles a restore onto a new server needs, beside the dump and covered by the manifest.
        manifest.globals = await backupGlobals(s, tools, targets, key);
        globalsWritten = true;
        phases.mark("globals");
        // Stopped meanwhile: the run ends uncommitted, as its exit code and message will say.
        throwIfStopping();
        // Every target holds the dump: now, and only now, commit it everywhere. A copy committed
        // with its manifest stays complete even if another target fails: its globals stay too.
        committing = true;
        await commitManifest(targets, manifest, s.signingKey);
        phases.mark("manifest");
        const secs = Math.max(manifest.durationMs / 1000, 0.001);
        log.info(
            `backup ${database} ok: ${formatBytes(bytes)} in ${formatDuration(manifest.durationMs)} ` +
                `(${formatBytes(bytes / secs)}/s) to ${targets.map((t) => t.kind).join(", ")}`,
            { event: "backup.done", database, key, bytes, durationMs: manifest.durationMs, sha256: manifest.sha256, tables: counts.tables.length, phasesMs: phases.durations() },
        );
        return { key, manifest };
    } catch (e) {
        for (const child of [dump, tar]) {
            if (child) {
                killGroup(child);
            }
        }
        // Failed after the dump was committed but before its manifest (globals, counts): the
        // run's own copies go, its globals too; nothing that looks like a backup but is not one stays.
        await discardArtifact(key, e as Error);
        if (globalsWritten && !committing) {
            await removeGlobals(targets, key);
        }
        if (!stopping()) {
            await baselineRead;
        }
        throw e instanceof JobError ? e : new JobError(`backup of ${database} failed: ${(e as Error).message}`);
    } finally {
        over = true;
        await client.query("ROLLBACK").catch(() => undefined);
        await client.end().catch(() => undefined);
        await counter?.close();
        if (workDir) {
            rmSync(workDir, { recursive: true, force: true });
        }
        releaseWorkDir();
    }
}

/**
 * The newest good full backup's manifest on any target. Not the first target's alone: a fresh or
 * emptied one (a new PVC) would leave nothing to compare with, and the first backup after a
 * loss of most rows would pass as good on every target.
 */
async function findBaseline(targets: Target[], database: string, signingKey: string | undefined, warn: Logger["warn"]): Promise<Manifest | undefined> {
    let newest: BackupEntry | undefined;
    await Promise.all(targets.map(async (t) => {
        try {
            const e = await newestGoodFull(t, database, { signingKey });
            if (e && (!newest || e.takenAt.getTime() > newest.takenAt.getTime())) {
                newest = e;
            }
        } catch (e) {
            warn(`cannot read earlier backups on ${t.kind} for the anomaly check: ${(e as Error).message}`, { event: "backup.baseline-unreadable", target: t.kind });
        }
    }));
    return newest?.manifest;
}

/** A partitioned table, its visibility on the search path, and the leaf partitions that hold its rows. */
export interface PartitionedTable extends TableRef {
    visible: boolean;
    leaves: (TableRef & { visible: boolean })[];
}

async function partitionedTables(client: Client): Promise<PartitionedTable[]> {
    const r = await client.query<PartitionedTable>(`
        SELECT n.nspname AS schema, c.relname AS name, pg_table_is_visible(c.oid) AS visible,
               coalesce((SELECT json_agg(json_build_object('schema', ln.nspname, 'name', l.relname, 'visible', pg_table_is_visible(l.oid)))
                   FROM pg_partition_tree(c.oid) tree JOIN pg_class l ON l.oid = tree.relid JOIN pg_namespace ln ON ln.oid = l.relnamespace
                   WHERE tree.isleaf AND l.relkind = 'r'), '[]') AS leaves
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'p'`);
    return r.rows;
}

/**
 * `backup --table` of a partitioned table whose partitions the patterns do not also select: pg_dump
 * (before 16's --table-and-children) saves its definition and none of the rows, and the backup
 * would say "ok" holding nothing of it. One message per such table, naming what to add. Patterns
 * are read as pg_dump reads them (an unqualified one matches tables visible on the search path);
 * one this cannot read selects nothing here, and pg_dump stays the judge. Pure.
 */
export function partitionsLeftOut(patterns: readonly string[], partitioned: readonly PartitionedTable[]): string[] {
    const compiled = patterns.flatMap((p) => {
        try {
            return [parseTableName(p)];
        } catch {
            return [];
        }
    });
    const selects = (t: TableRef & { visible: boolean }) => compiled.some((c) => (c.schema ? c.schema.test(t.schema) : t.visible) && c.name.test(t.name));
    return partitioned.filter(selects).flatMap((p) => {
        const left = p.leaves.filter((l) => !selects(l));
        if (left.length === 0) {
            return [];
        }
        const names = left.slice(0, 5).map((l) => tableLabel(l)).join(", ") + (left.length > 5 ? `, … (${left.length} in all)` : "");
        return [`--table selects the partitioned table ${tableLabel(p)} but not its partitions ${names}: pg_dump would save none of their rows. ` +
            `Add them (e.g. --table '${patternPart(p.schema)}.${patternPart(p.name)}*'), or back up the whole database`];
    });
}

/** A name as a pg_dump pattern part that matches it exactly: quoted unless plain lower case. */
const patternPart = (s: string) => (/^[a-z_][a-z0-9_]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`);

function dumpFailure(database: string, line: string): JobError {
    const detail = line.replace(/^pg_dump:\s*(error:\s*)?/i, "");
    return new JobError(`pg_dump of ${database} failed: ${detail || "no message"}; ${pgDumpHint(line)}`);
}
