/**
 * Job-side compression against the real pg_restore: pg_dump --compress=0 to a pipe, rebuilt as a
 * zlib archive (in this thread with small pieces and irregular reads, and through the worker as
 * the job does), restores — sequentially and with -j2 — to exactly the source's rows and large
 * objects, lists the same entries as pg_dump's own compressed archive, and counts the same rows.
 * The backup command does this by default and says so in the manifest; BACKUP_COMPRESS_THREADS=0
 * leaves compression to pg_dump. An archive pg_dump wrote to a file is refused, not rewritten.
 */
import { execFileSync } from "child_process";
import { readdirSync, readFileSync, writeFileSync } from "fs";
import * as path from "path";
import { Readable } from "stream";
import { describe, expect, it } from "vitest";
import { PG_BIN, PgCluster } from "../../jobs/dev/services";
import { DumpStreamCounter } from "../../jobs/src/dumpstream";
import { CustomDumpReader } from "../../jobs/src/dumpstream/custom";
import { ArchiveRecompressor } from "../../jobs/src/dumpstream/recompress";
import { logLines, runCli } from "../helpers/cli";
import { DUMP_FIXTURE, ONLY_COUNTS } from "../helpers/dumpFixture";
import { postgresForFile } from "../helpers/postgresForFile";

let pg: PgCluster;
let work: string;
const DB = "kx_recompress";
let raw: Buffer;
let fingerprint: string;

/** Every ordinary table's rows (md5 of its sorted text form) and every large object's bytes. */
const FINGERPRINT = String.raw`
SELECT coalesce(string_agg(format('%I.%I', n.nspname, c.relname) || ' ' ||
    (xpath('/row/m/text()', query_to_xml(format('SELECT md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) AS m FROM ONLY %I.%I t', n.nspname, c.relname), false, true, '')))[1]::text,
    E'\n' ORDER BY n.nspname, c.relname), '') ||
  E'\nlarge objects ' || (SELECT md5(coalesce(string_agg(loid || ':' || pageno || ':' || md5(data), ',' ORDER BY loid, pageno), '')) FROM pg_largeobject)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`;

postgresForFile("kx-recompress-", (started, dir) => {
    pg = started;
    work = dir;
    pg.psql("postgres", `CREATE DATABASE ${DB}`);
    pg.psql(DB, DUMP_FIXTURE);
    fingerprint = pg.psql(DB, FINGERPRINT);
    // To a pipe, as the job runs it: no data offsets in the table of contents.
    raw = execFileSync(path.join(PG_BIN, "pg_dump"), ["-Fc", "--compress=0", DB], { env: { ...process.env, ...pg.env(DB) }, maxBuffer: 1 << 30 });
});

/** Rebuilds `raw` in this thread, read in irregular pieces. */
async function rebuild(input: Buffer, o: { threads: number; pieceBytes?: number; seed?: number }) {
    const out: Buffer[] = [];
    const reader = new CustomDumpReader(new ArchiveRecompressor({ level: -1, threads: o.threads, pieceBytes: o.pieceBytes, emit: (b) => out.push(Buffer.from(b)) }));
    let x = o.seed ?? 5;
    const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
    for (let at = 0; at < input.length; ) {
        const size = 1 + (next() % (next() % 3 === 0 ? 13 : 300_000));
        await reader.push(input.subarray(at, at + size));
        at += size;
    }
    const counts = await reader.end();
    return { archive: Buffer.concat(out), counts };
}

/** Restores `file` into a new database; returns its fingerprint. */
function restored(file: string, name: string, jobs?: number): string {
    pg.psql("postgres", `CREATE DATABASE ${name}`);
    execFileSync(path.join(PG_BIN, "pg_restore"), ["--exit-on-error", "--no-owner", ...(jobs ? ["-j", String(jobs)] : []), "-d", name, file], { env: { ...process.env, ...pg.env(name) }, stdio: ["ignore", "pipe", "pipe"] });
    return pg.psql(name, FINGERPRINT);
}

const listing = (file: string) =>
    execFileSync(path.join(PG_BIN, "pg_restore"), ["--list", file]).toString().split("\n").filter((l) => /^\d+; /.test(l));

describe("an uncompressed dump rebuilt as pg_dump's zlib archive", () => {
    it("restores exactly the source's rows and large objects, with and without -j2", async () => {
        const { archive, counts } = await rebuild(raw, { threads: 3, pieceBytes: 64 * 1024 });
        const file = path.join(work, "rebuilt.dump");
        writeFileSync(file, archive);
        expect(fingerprint).toContain("large objects");
        expect(restored(file, "kx_rebuilt_seq")).toBe(fingerprint);
        expect(restored(file, "kx_rebuilt_j2", 2)).toBe(fingerprint);
        // Counted from the uncompressed stream: the same counts as count(*) FROM ONLY.
        const only = JSON.parse(pg.psql(DB, ONLY_COUNTS)) as { schema: string; name: string; rows: number }[];
        for (const t of only.filter((t) => t.rows > 0)) {
            expect(counts.tables.find((c) => c.schema === t.schema && c.name === t.name)?.rows).toBe(t.rows);
        }
        expect(counts.largeObjects).toBe(3);
    });

    it("pg_restore sees a zlib archive with the same entries as pg_dump's own, about as small", async () => {
        const { archive } = await rebuild(raw, { threads: 2 });
        const file = path.join(work, "listed.dump");
        writeFileSync(file, archive);
        const own = path.join(work, "own.dump");
        execFileSync(path.join(PG_BIN, "pg_dump"), ["-Fc", "-f", own, DB], { env: { ...process.env, ...pg.env(DB) } });
        const header = (f: string) => execFileSync(path.join(PG_BIN, "pg_restore"), ["--list", f]).toString().split("\n").filter((l) => /Compression|Format|TOC Entries/.test(l));
        expect(header(file)).toEqual(header(own));
        // Same entries (ids, kinds, names, owners); pg_restore prints catalog oids that differ by run, dropped here.
        const strip = (l: string) => l.replace(/^(\d+); \d+ \d+ /, "$1 ");
        expect(listing(file).map(strip)).toEqual(listing(own).map(strip));
        expect(archive.length).toBeLessThan(readFileSync(own).length * 1.1);
        expect(archive.length).toBeLessThan(raw.length / 2);
    });

    it("is the same archive whatever the threads and read sizes, and through the worker as the job runs it", async () => {
        const a = await rebuild(raw, { threads: 1, seed: 1 });
        const b = await rebuild(raw, { threads: 4, seed: 2 });
        expect(b.archive.equals(a.archive)).toBe(true);
        const counter = new DumpStreamCounter("custom", { maxInFlight: 256 * 1024, recompress: { level: -1, threads: 2 } });
        try {
            const parts: Buffer[] = [];
            for await (const chunk of counter.tap(Readable.from([raw.subarray(0, 100_001), raw.subarray(100_001)]))) {
                parts.push(chunk as Buffer);
            }
            expect(Buffer.concat(parts).equals(a.archive)).toBe(true);
            expect((await counter.result()).tables).toEqual(a.counts.tables);
        } finally {
            await counter.close();
        }
    });

    it("never stalls: output held back at first (as commit.ts holds it), then read slowly, in pauses", async () => {
        for (const seed of [1, 2, 3]) {
            // A small mark downstream: it fills while the output is held, as a big dump's does.
            const counter = new DumpStreamCounter("custom", { maxInFlight: 128 * 1024, outputHeld: 16 * 1024, recompress: { level: 1, threads: 2 } });
            try {
                // The dump arrives in pipe-sized reads, as from pg_dump's stdout.
                const reads = Array.from({ length: Math.ceil(raw.length / 65536) }, (_, i) => raw.subarray(i * 65536, (i + 1) * 65536));
                const out = counter.tap(Readable.from(reads));
                const keep = () => undefined;
                out.on("readable", keep);
                await new Promise((r) => setTimeout(r, 50 * seed));
                out.removeListener("readable", keep);
                let bytes = 0;
                let n = 0;
                await new Promise<void>((resolve, reject) => {
                    out.on("data", (chunk: Buffer) => {
                        bytes += chunk.length;
                        if (++n % (2 + seed) === 0) {
                            out.pause();
                            setTimeout(() => out.resume(), seed * 3);
                        }
                    });
                    out.once("end", resolve);
                    out.once("error", reject);
                    out.resume();
                });
                expect(bytes).toBeGreaterThan(0);
                expect((await counter.result()).largeObjects).toBe(3);
            } finally {
                await counter.close();
            }
        }
    }, 60_000);

    it("a dump pg_dump wrote to a file (data offsets in its TOC) is refused, not rewritten", async () => {
        const file = path.join(work, "offsets.dump");
        execFileSync(path.join(PG_BIN, "pg_dump"), ["-Fc", "--compress=0", "-f", file, DB], { env: { ...process.env, ...pg.env(DB) } });
        await expect(rebuild(readFileSync(file), { threads: 2 })).rejects.toThrow(/records data offsets .*written to a file/);
        const compressed = path.join(work, "compressed.dump");
        execFileSync(path.join(PG_BIN, "pg_dump"), ["-Fc", "-f", compressed, DB], { env: { ...process.env, ...pg.env(DB) } });
        await expect(rebuild(readFileSync(compressed), { threads: 2 })).rejects.toThrow(/already gzip-compressed/);
    });

    it("a stream cut short mid-block fails the rebuilt stream, after the producer's own failure", async () => {
        const counter = new DumpStreamCounter("custom", { recompress: { level: -1, threads: 2 } });
        let producerFailed = false;
        const producerExited = new Promise<void>((resolve) => setTimeout(() => {
            producerFailed = true;
            resolve();
        }, 300));
        try {
            const out = counter.tap(Readable.from([raw.subarray(0, Math.floor(raw.length * 0.6))]), producerExited);
            const consumed = (async () => {
                for await (const _ of out) {
                    // drain
                }
            })();
            await expect(consumed).rejects.toThrow(/stops mid-block|ends before the data/);
            // The stream failed only once the producer had exited: its message comes first.
            expect(producerFailed).toBe(true);
            await expect(counter.result()).rejects.toThrow(/stops mid-block|ends before the data/);
        } finally {
            await counter.close();
        }
    });
});

describe("kx-backup backup compresses in the job by default", () => {
    const run = (dir: string, env: Record<string, string> = {}) =>
        runCli(["backup", "--no-prune"], { ...pg.env(DB), BACKUP_LOCAL_DIR: dir, BACKUP_LOG_FORMAT: "json", ...env });

    it("the manifest says so, the dump restores to the source, and BACKUP_COMPRESS_THREADS=0 leaves it to pg_dump", async () => {
        const dir = path.join(work, "backups");
        const r = await run(dir);
        expect(r.code, r.stderr).toBe(0);
        const manifestOf = (d: string) => {
            const name = readdirSync(path.join(d, DB)).filter((f) => f.endsWith(".manifest.json")).sort().pop()!;
            return JSON.parse(readFileSync(path.join(d, DB, name), "utf8"));
        };
        const m = manifestOf(dir);
        expect(m.compressedByJob).toEqual({ level: -1, threads: 2 });
        expect(m.counts.method).toBe("dump-stream");
        const dump = path.join(dir, m.key);
        expect(restored(dump, "kx_from_backup", 2)).toBe(fingerprint);

        const dir0 = path.join(work, "backups0");
        const r0 = await run(dir0, { BACKUP_COMPRESS_THREADS: "0" });
        expect(r0.code, r0.stderr).toBe(0);
        const m0 = manifestOf(dir0);
        expect(m0.compressedByJob).toBeUndefined();
        expect(m0.tables).toEqual(m.tables);
        expect(logLines(r.stderr).find((l) => l.event === "backup.done")).toBeTruthy();
    });

    it("a bad BACKUP_COMPRESS_THREADS is refused before anything runs", async () => {
        const dir = path.join(work, "bad");
        const r = await run(dir, { BACKUP_COMPRESS_THREADS: "many" });
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/BACKUP_COMPRESS_THREADS/);
        expect(() => readdirSync(dir)).toThrow();
    });
});
