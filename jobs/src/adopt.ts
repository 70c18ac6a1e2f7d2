/**
 * `kx-backup adopt`: brings a dump kx-backup did not write (the runbook's hand-made
 * `crypto_exchange-20261120-030000.dump`, an `aws s3 cp` upload) under kx-backup's care. Until
 * adopted, such a dump is `foreign`: listed, never deleted, never restored by `latest`.
 *
 * Adopting checks the dump first — `pg_restore --list` must read it; format and versions come
 * from its header; sha256 and size are measured — then writes a manifest marked `adopted` (no
 * row counts: there is no snapshot to count in) beside it, exclusively, on each target that
 * holds a copy. From then on it joins retention, verify and restore.
 */
import { execFile } from "child_process";
import { createHash } from "crypto";
import { createReadStream, createWriteStream, rmSync } from "fs";
import * as path from "path";
import { Transform } from "stream";
import { finished, pipeline } from "stream/promises";
import { promisify } from "util";
import { BackupEntry, listBackups } from "./catalog";
import { commitManifest } from "./commit";
import { DumpFormat, DumpStreamCounter, DumpStreamError } from "./dumpstream";
import { failureLine, JobError, Logger } from "./log";
import { BackupScope, Manifest, MANIFEST_KIND, tableKey, TocEntry } from "./manifest";
import { parseBackupName } from "./naming";
import { discoverTools } from "./pgtools";
import { scratchDir } from "./scratch";
import { onStop } from "./shutdown";
import { Target } from "./targets";
import { parseRestoreList, RestoreListing } from "./toc";

const execFileP = promisify(execFile);

export interface AdoptOptions {
    database: string;
    /** One dump's name; default: every foreign dump of the database. */
    backup?: string;
    /** Overrides what the table of contents suggests. */
    scope?: BackupScope;
    signingKey?: string;
    pgBinDir?: string;
    workDir?: string;
    now?: Date;
}

export interface Adopted {
    target: string;
    key: string;
    scope: BackupScope;
    size: number;
    sha256: string;
}

/**
 * What a dump holds, read from its table of contents. pg_dump always writes a DATABASE entry, so
 * a dump of selected tables cannot be told from a full dump of a database holding only those:
 * anything with definitions and data for every table reads as `full` (override with --scope).
 * Pure.
 */
export function scopeFromToc(entries: readonly TocEntry[]): BackupScope {
    const definitions = entries.filter((e) => !["TABLE DATA", "BLOBS", "BLOB DATA", "SEQUENCE SET", "MATERIALIZED VIEW DATA", "DATABASE", "DATABASE PROPERTIES", "ENCODING", "STDSTRINGS", "SEARCHPATH"].includes(e.desc));
    const data = entries.filter((e) => e.desc === "TABLE DATA" || e.desc === "BLOBS");
    if (definitions.length === 0 && data.length > 0) {
        return "data-only";
    }
    const tables = entries.filter((e) => e.desc === "TABLE");
    if (data.length === 0 && tables.length > 0) {
        return "schema-only";
    }
    const withData = new Set(entries.filter((e) => e.desc === "TABLE DATA").map(tableKey));
    return tables.every((t) => withData.has(tableKey(t))) ? "full" : "tables";
}

/** The dump's server version as PostgreSQL's integer (15.18 → 150018). Pure. */
export function versionNum(version: string): number {
    const m = /^(\d+)(?:\.(\d+))?/.exec(version);
    if (!m) {
        return 0;
    }
    const major = Number(m[1]);
    return major >= 10 ? major * 10000 + Number(m[2] ?? 0) : 0;
}

/**
 * Reads the whole dump as the backup job reads its own (dumpstream): `pg_restore --list` reads the
 * table of contents only, which a dump cut short after it (an interrupted `pg_dump > file`, a
 * killed `aws s3 cp -`) still has whole. Adopted, such a dump would count as a good full backup —
 * `latest`, a keep-min place — that no restore can finish. Why it is not whole, or undefined.
 * A dump the reader cannot count (INSERT statements, an archive version it does not know) is not
 * judged here: pg_restore stays the judge of what it reads.
 */
async function cutShort(file: string, format: DumpFormat): Promise<string | undefined> {
    const counter = new DumpStreamCounter(format);
    try {
        const read = counter.tap(createReadStream(file));
        read.resume();
        await finished(read);
        await counter.result();
        return undefined;
    } catch (e) {
        if (!(e instanceof DumpStreamError)) {
            throw e;
        }
        return e.atEnd ? e.message : undefined;
    } finally {
        await counter.close();
    }
}

async function download(target: Target, key: string, file: string): Promise<{ sha256: string; size: number; head: Buffer }> {
    const hash = createHash("sha256");
    let size = 0;
    let head = Buffer.alloc(0);
    const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            size += chunk.length;
            if (head.length < 512) {
                head = Buffer.concat([head, chunk.subarray(0, 512 - head.length)]);
            }
            cb(null, chunk);
        },
    });
    await pipeline(await target.get(key), tap, createWriteStream(file, { mode: 0o600 }));
    return { sha256: hash.digest("hex"), size, head };
}

/** The header of a plain SQL dump: versions from pg_dump's comment lines. Pure. */
export function plainHeader(head: string): { serverVersion: string; pgDumpVersion: string } | undefined {
    if (!/^--\s*\n--\s*PostgreSQL database dump/.test(head)) {
        return undefined;
    }
    const server = /-- Dumped from database version ([^\s]+)/.exec(head)?.[1] ?? "";
    const client = /-- Dumped by pg_dump version ([^\s]+)/.exec(head)?.[1] ?? "";
    return { serverVersion: server, pgDumpVersion: client };
}

async function inspect(file: string, ext: string, head: Buffer, o: AdoptOptions): Promise<{ format: Manifest["format"]; server: string; pgDump: string; toc?: TocEntry[]; scope: BackupScope }> {
    if (ext === "dump.tar") {
        throw new JobError("a directory-format dump kx-backup did not write cannot be adopted: restore it by hand, then back up with kx-backup", 2);
    }
    if (ext === "sql") {
        const h = plainHeader(head.toString("utf8"));
        if (!h) {
            throw new JobError("not a pg_dump plain-format dump (no \"PostgreSQL database dump\" header)");
        }
        return { format: "plain", server: h.serverVersion, pgDump: h.pgDumpVersion, scope: o.scope ?? "full" };
    }
    if (head.subarray(0, 5).toString("latin1") !== "PGDMP") {
        throw new JobError(`not a pg_dump custom-format archive (it starts with ${JSON.stringify(head.subarray(0, 8).toString("latin1"))}, not "PGDMP")`);
    }
    // The newest pg_restore reads every older archive version.
    const tools = discoverTools(o.pgBinDir).sort((a, b) => b.major - a.major)[0];
    if (!tools) {
        throw new JobError("no pg_restore found: install PostgreSQL client tools or set BACKUP_PG_BIN_DIR", 2);
    }
    let listing: RestoreListing;
    try {
        const { stdout } = await execFileP(path.join(tools.dir, "pg_restore"), ["--list", "--create", file], {
            env: { PATH: process.env.PATH ?? "", LANG: "C.UTF-8" },
            maxBuffer: 256 * 1024 * 1024,
        });
        listing = parseRestoreList(stdout);
    } catch (e) {
        throw new JobError(`pg_restore ${tools.version} cannot read it: ${failureLine(String((e as { stderr?: string }).stderr ?? (e as Error).message))}`);
    }
    if (listing.format !== "CUSTOM") {
        throw new JobError(`a ${listing.format.toLowerCase()}-format archive cannot be adopted: kx-backup stores custom, directory (tarred) and plain dumps`);
    }
    // A file named for one database may hold another's dump (a hand-made copy, a wrong `aws s3 cp`):
    // adopted, it would become that database's backup, and a restore would replace it with the other.
    const dumped = listing.entries.find((e) => e.desc === "DATABASE")?.name;
    if (dumped !== undefined && dumped !== o.database && !dumped.startsWith(`${o.database} `)) {
        throw new JobError(`it is a dump of database "${dumped}", not of ${o.database}: move it under ${dumped}/ (named ${dumped}-YYYYMMDD-HHMMSS.dump) to adopt it there`);
    }
    return { format: "custom", server: listing.serverVersion, pgDump: listing.pgDumpVersion, toc: listing.entries, scope: o.scope ?? scopeFromToc(listing.entries) };
}

async function adoptOne(target: Target, entry: BackupEntry, o: AdoptOptions, log: Logger): Promise<Adopted> {
    const parsed = parseBackupName(entry.key)!;
    const dir = scratchDir(o.workDir, "kx-adopt-");
    const release = onStop(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    try {
        const file = path.join(dir, "dump");
        const started = Date.now();
        const got = await download(target, entry.key, file).catch((e) => {
            throw new JobError(`cannot download ${entry.key} from ${target.kind}: ${(e as Error).message}`);
        });
        if (got.size === 0) {
            throw new JobError(`${entry.key} on ${target.kind} is empty: nothing to adopt`);
        }
        const found = await inspect(file, parsed.ext, got.head, o).catch((e) => {
            throw e instanceof JobError ? new JobError(`${entry.key} on ${target.kind}: ${e.message}`, e.exitCode) : e;
        });
        const short = await cutShort(file, found.format === "plain" ? "plain" : "custom");
        if (short) {
            throw new JobError(`${entry.key} on ${target.kind} is not a whole dump (${short}): not adopted; it stays foreign, never deleted`);
        }
        const now = o.now ?? new Date();
        const manifest: Manifest = {
            kind: MANIFEST_KIND,
            manifestVersion: 2,
            database: o.database,
            key: entry.key,
            locations: { [target.kind]: `${target.location.replace(/\/+$/, "")}/${entry.key}` },
            scope: found.scope,
            purpose: "adopted",
            format: found.format,
            container: "pg_dump",
            options: { schemaOnly: found.scope === "schema-only", dataOnly: found.scope === "data-only", tables: [], jobs: 1 },
            startedAt: parsed.takenAt.toISOString(),
            finishedAt: parsed.takenAt.toISOString(),
            durationMs: 0,
            size: got.size,
            sha256: got.sha256,
            pgDump: { version: found.pgDump.split(" ")[0] },
            server: { version: found.server.split(" ")[0], versionNum: versionNum(found.server) },
            tables: [],
            counts: { method: "none" },
            ...(found.toc ? { toc: found.toc } : {}),
            adopted: {
                at: now.toISOString(),
                originalName: entry.key.slice(entry.key.lastIndexOf("/") + 1),
                note: `checked by kx-backup adopt in ${Date.now() - started} ms: ${found.toc ? "pg_restore --list reads it" : "plain SQL header"}; scope ${o.scope ? "given" : "read from its table of contents"}; no row counts`,
            },
            targets: [target.kind],
        };
        await commitManifest([target], manifest, o.signingKey);
        log.info(`adopted ${entry.key} on ${target.kind}: ${found.format}, ${found.scope}, server ${manifest.server.version}, sha256 ${got.sha256.slice(0, 12)}…`, {
            event: "adopt.done", target: target.kind, key: entry.key, scope: found.scope, sha256: got.sha256,
        });
        return { target: target.kind, key: entry.key, scope: found.scope, size: got.size, sha256: got.sha256 };
    } finally {
        rmSync(dir, { recursive: true, force: true });
        release();
    }
}

/** Adopts the named foreign dump, or every foreign dump of the database, on each target. */
export async function runAdopt(targets: Target[], o: AdoptOptions, log: Logger): Promise<Adopted[]> {
    const name = o.backup === undefined ? undefined : o.backup.includes("/") ? o.backup : `${o.database}/${o.backup}`;
    const adopted: Adopted[] = [];
    const failures: string[] = [];
    let seen = 0;
    for (const t of targets) {
        const entries = await listBackups(t, o.database).catch((e) => {
            throw new JobError(`cannot list ${t.location}: ${(e as Error).message}`);
        });
        // Archives of files (.tar.gz) sharing the folder are not database dumps: never adopted as one.
        const candidates = entries.filter((e) => (name === undefined ? e.kind === "foreign" && e.family === "dump" : e.key === name));
        for (const e of candidates) {
            seen++;
            if (e.kind !== "foreign") {
                failures.push(`${e.key} on ${t.kind} is ${e.kind === "full" || e.kind === "safety" ? "already a kx-backup backup (it has a manifest)" : `kx-backup's own ${e.kind} leftover, not a foreign dump`}`);
                continue;
            }
            try {
                adopted.push(await adoptOne(t, e, o, log));
            } catch (err) {
                failures.push((err as Error).message);
            }
        }
    }
    const differing = new Set(adopted.filter((a) => a.key === adopted[0]?.key).map((a) => a.sha256));
    if (name !== undefined && differing.size > 1) {
        log.warn(`the copies of ${name} differ between targets (sha256): each was adopted as what it is; verify each with --from`, { event: "adopt.copies-differ" });
    }
    if (name !== undefined && seen === 0) {
        throw new JobError(`${name} not found on ${targets.map((t) => t.kind).join(", ")}`, 2);
    }
    if (failures.length > 0) {
        throw new JobError(`adopt: ${failures.join("; ")}${adopted.length ? ` (adopted ${adopted.length} other dump(s))` : ""}`);
    }
    return adopted;
}
