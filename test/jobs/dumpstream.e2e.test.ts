/**
 * Row counts read from pg_dump's own output equal `count(*) FROM ONLY` in the dump's snapshot,
 * for every format and with and without compression, on a database built to make that hard
 * (test/helpers/dumpFixture.ts); a dump cut short anywhere is refused; the job writes those
 * counts and the table of contents into the manifest without a second read of any table.
 */
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import { chmodSync, createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { PG_BIN, PgCluster, verifyServerEnv } from "../../jobs/dev/services";
import { createDumpReader, DumpCounts, DumpFormat, DumpStreamCounter, readDumpToc } from "../../jobs/src/dumpstream";
import { Readable } from "stream";
import { logLines, runCli } from "../helpers/cli";
import { DUMP_FIXTURE, ONLY_COUNTS } from "../helpers/dumpFixture";
import { postgresForFile } from "../helpers/postgresForFile";

let pg: PgCluster;
let work: string;
const DB = "kx_counts";
type Row = { schema: string; name: string; rows: number };
let expected: Row[];
let largeObjects: number;

const byName = (a: { schema: string; name: string }, b: { schema: string; name: string }) =>
    a.schema === b.schema ? (a.name < b.name ? -1 : 1) : a.schema < b.schema ? -1 : 1;
const sorted = (rows: Row[]) => [...rows].sort(byName);

postgresForFile("kx-dumpstream-", (started, dir) => {
    pg = started;
    work = dir;
    pg.psql("postgres", `CREATE DATABASE ${DB}`);
    pg.psql(DB, DUMP_FIXTURE);
    expected = JSON.parse(pg.psql(DB, ONLY_COUNTS));
    largeObjects = Number(pg.psql(DB, "SELECT count(*) FROM pg_largeobject_metadata"));
});

/** Runs pg_dump into `out` (a file, or a directory for -Fd); returns the path to feed (a tar for directories). */
function pgDump(name: string, args: string[]): string {
    const out = path.join(work, name);
    execFileSync(path.join(PG_BIN, "pg_dump"), [...args, "-f", out, DB], { env: { ...process.env, ...pg.env(DB) }, stdio: ["ignore", "pipe", "pipe"] });
    if (!args.includes("-Fd")) {
        return out;
    }
    const tar = `${out}.tar`;
    execFileSync("tar", ["-cf", tar, "-C", out, "."]);
    return tar;
}

/** Through the worker thread, as the job does: every byte passes unchanged. */
async function viaWorker(format: DumpFormat, file: string): Promise<DumpCounts> {
    const counter = new DumpStreamCounter(format, { maxInFlight: 256 * 1024 });
    try {
        const hash = createHash("sha256");
        const tapped = counter.tap(createReadStream(file));
        for await (const chunk of tapped) {
            hash.update(chunk as Buffer);
        }
        expect(hash.digest("hex")).toBe(createHash("sha256").update(readFileSync(file)).digest("hex"));
        return await counter.result();
    } finally {
        await counter.close();
    }
}

/** In this thread, in pieces of irregular sizes (1 byte to 64 KiB) so every boundary case is met. */
async function inPieces(format: DumpFormat, buf: Buffer, seed = 7): Promise<DumpCounts> {
    const reader = createDumpReader(format);
    let x = seed;
    const next = () => {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        return x;
    };
    for (let i = 0; i < buf.length; ) {
        const r = next() % 100;
        const size = r < 30 ? 1 + (next() % 16) : r < 60 ? 1 + (next() % 700) : 1 + (next() % 65536);
        await reader.push(buf.subarray(i, i + size));
        i += size;
    }
    return reader.end();
}

/** Entries pg_restore --list leaves out (applied on reading, or only with --create). */
const UNLISTED = new Set(["ENCODING", "STDSTRINGS", "SEARCHPATH", "DATABASE"]);
const listed = (toc: { id: number; desc: string; schema: string; name: string; owner: string }[]) =>
    toc.filter((e) => !UNLISTED.has(e.desc)).map((e) => `${e.id} ${e.desc} ${e.schema || "-"} ${e.name} ${e.owner}`);

/** `pg_restore --list` as "id desc schema name owner" lines, for comparing tables of contents. */
function restoreList(file: string): string[] {
    return execFileSync(path.join(PG_BIN, "pg_restore"), ["--list", file]).toString().split("\n")
        .filter((l) => /^\d+; /.test(l))
        .map((l) => l.replace(/^(\d+); \d+ \d+ /, "$1 "));
}

const VARIANTS: { name: string; format: DumpFormat; args: string[] }[] = [
    { name: "custom, compressed (the default)", format: "custom", args: ["-Fc"] },
    { name: "custom, --compress=0", format: "custom", args: ["-Fc", "--compress=0"] },
    { name: "directory, compressed, 2 jobs (as a tar)", format: "directory", args: ["-Fd", "-j", "2"] },
    { name: "directory, --compress=0 (as a tar)", format: "directory", args: ["-Fd", "--compress=0"] },
    { name: "plain SQL", format: "plain", args: ["-Fp"] },
];

describe("row counts from the dump stream", () => {
    it("the fixture is what it claims: inheritance, partitions, wide rows, large objects", () => {
        // count(*) on a parent includes its children; pg_dump's COPY of the parent does not.
        expect(pg.psql(DB, "SELECT count(*) FROM parent")).toBe("31");
        expect(expected.find((t) => t.name === "parent")?.rows).toBe(7);
        expect(Number(pg.psql(DB, "SELECT max(octet_length(t)) FROM wide"))).toBeGreaterThan(6 * 1024 * 1024);
        expect(largeObjects).toBe(3);
        expect(expected.find((t) => t.name === "events")).toBeUndefined(); // partitioned: no rows of its own
    });

    for (const v of VARIANTS) {
        it(`${v.name}: every table's count equals count(*) FROM ONLY, large objects apart`, async () => {
            const file = pgDump(`fixture-${v.args.join("")}`, v.args);
            const counts = await viaWorker(v.format, file);
            expect(sorted(counts.tables)).toEqual(sorted(expected));
            expect(counts.largeObjects).toBe(largeObjects);
            // Irregular pieces in this thread give the same answer.
            const again = await inPieces(v.format, readFileSync(file));
            expect(again.tables).toEqual(counts.tables);
            expect(again.largeObjects).toBe(largeObjects);
            if (v.format === "plain") {
                expect(counts.toc).toBeUndefined();
            } else {
                // The table of contents is pg_restore's, entry for entry.
                const list = restoreList(v.format === "directory" ? file.replace(/\.tar$/, "") : file);
                expect(listed(counts.toc!)).toEqual(list);
                expect(counts.toc!.filter((e) => UNLISTED.has(e.desc)).map((e) => e.desc)).toEqual(["ENCODING", "STDSTRINGS", "SEARCHPATH", "DATABASE"]);
                expect(counts.toc!.filter((e) => e.desc === "TABLE DATA" && e.schema === "we.ird").map((e) => e.name).sort())
                    .toEqual(["Mixed Case", 'it\'s a "table" FROM stdin; x']);
                expect(counts.archive).toMatchObject({ version: "1.14.0", compression: v.args.includes("--compress=0") ? "none" : "gzip", database: DB });
            }
        }, 120_000);
    }
});

describe("a dump cut short is refused, wherever it stops", () => {
    const small = ["--exclude-table-data=wide", "--exclude-table-data=many", "--exclude-table-data=events*"];
    for (const v of VARIANTS) {
        it(`${v.name}`, async () => {
            const full = readFileSync(pgDump(`small-${v.args.join("")}`, [...v.args, ...small]));
            const complete = await inPieces(v.format, full);
            expect(complete.tables.length).toBeGreaterThan(5);
            // Every 97th byte, and the last 200 bytes one by one (where the final blocks and lines end).
            const cuts = new Set<number>([0, 1, 5, 100]);
            for (let i = 0; i < full.length; i += 97) {
                cuts.add(i);
            }
            for (let i = Math.max(0, full.length - 200); i < full.length; i++) {
                cuts.add(i);
            }
            const accepted: number[] = [];
            for (const cut of cuts) {
                const outcome = await inPieces(v.format, full.subarray(0, cut), cut).then(() => "counted", (e: Error) => e.message);
                if (outcome === "counted") {
                    accepted.push(cut);
                } else {
                    expect(outcome, `cut at ${cut} of ${full.length}`).toMatch(/cut short|empty|incomplete/);
                }
            }
            // Only what carries nothing may be missing: a tar's closing zero blocks, a SQL file's last newline.
            for (const cut of accepted) {
                expect(v.format === "directory" || v.format === "plain", `cut at ${cut}`).toBe(true);
                expect(full.subarray(cut).every((b) => b === (v.format === "plain" ? 0x0a : 0)), `cut at ${cut}`).toBe(true);
            }
        }, 120_000);
    }

    it("inside a row of several MiB, in the worker, as the job reads it", async () => {
        const file = pgDump("wide-cut", ["-Fc", "--table=wide"]);
        const full = readFileSync(file);
        for (const fraction of [0.2, 0.5, 0.9]) {
            const cut = path.join(work, `wide-cut-${fraction}`);
            writeFileSync(cut, full.subarray(0, Math.floor(full.length * fraction)));
            await expect(viaWorker("custom", cut)).rejects.toThrow(/stops mid-block inside the data of TABLE DATA public\.wide \(entry \d+\), at byte \d+: its output was cut short/);
        }
    });

    it("a corrupt byte in compressed data is reported, not miscounted", async () => {
        const full = Buffer.from(readFileSync(pgDump("corrupt", ["-Fc", "--table=many"])));
        full[Math.floor(full.length * 0.6)] ^= 0xff;
        await expect(inPieces("custom", full)).rejects.toThrow(/corrupt/);
    });

    it("something that is not a dump is refused with what it is not", async () => {
        await expect(inPieces("custom", Buffer.from("PGDMQ not a dump at all, just text long enough to be read"))).rejects.toThrow(/not a pg_dump archive/);
        await expect(inPieces("custom", Buffer.alloc(0))).rejects.toThrow(/empty/);
        await expect(inPieces("plain", Buffer.from("SELECT 1;\n"))).rejects.toThrow(/cut short/);
    });
});

describe("readDumpToc: the table of contents of a dump on disk", () => {
    it("reads custom files, dump directories and their tars, as pg_restore --list does", async () => {
        const custom = pgDump("toc-custom", ["-Fc"]);
        const dirTar = pgDump("toc-dir", ["-Fd"]);
        const dir = dirTar.replace(/\.tar$/, "");
        for (const [file, container] of [[custom, "custom"], [dir, "directory"], [dirTar, "tar"]] as const) {
            const toc = await readDumpToc(file);
            expect(toc.container).toBe(container);
            expect(listed(toc.entries)).toEqual(restoreList(container === "custom" ? custom : dir));
            expect(toc.dataTables.sort(byName)).toEqual(expected.map(({ schema, name }) => ({ schema, name })).sort(byName));
        }
    });

    it("refuses plain SQL, a cut-short head and a non-dump with a clear message", async () => {
        await expect(readDumpToc(pgDump("toc-plain.sql", ["-Fp"]))).rejects.toThrow(/plain SQL dump has no table of contents/);
        const cut = path.join(work, "toc-cut.dump");
        writeFileSync(cut, readFileSync(pgDump("toc-custom2", ["-Fc"])).subarray(0, 900));
        await expect(readDumpToc(cut)).rejects.toThrow(/ends inside its table of contents/);
        const empty = mkdtempSync(path.join(work, "not-a-dump-"));
        await expect(readDumpToc(empty)).rejects.toThrow(/no toc\.dat/);
    });
});

describe("kx-backup backup writes the dump's own counts and table of contents", () => {
    const env = (dir: string, extra: Record<string, string> = {}) => ({ ...pg.env(DB), BACKUP_LOCAL_DIR: dir, ...extra });
    const manifestIn = (dir: string) => {
        const files = readdirSync(path.join(dir, DB));
        const m = files.find((f) => f.endsWith(".manifest.json"));
        return m ? JSON.parse(readFileSync(path.join(dir, DB, m), "utf8")) : undefined;
    };

    for (const [format, extra] of [["custom", []], ["directory", ["--jobs", "2"]], ["plain", []]] as const) {
        it(`${format}: counts.method dump-stream, exact counts, large objects${format === "plain" ? "" : ", toc"}`, async () => {
            const dir = path.join(work, `cli-${format}`);
            const before = Number(pg.psql(DB, "SELECT sum(seq_scan) FROM pg_stat_user_tables WHERE relname = 'many'"));
            const r = await runCli(["backup", "--no-prune", "--format", format, ...extra], env(dir));
            expect(r.code, r.stderr).toBe(0);
            const m = manifestIn(dir);
            expect(m.counts).toEqual({ method: "dump-stream", largeObjects });
            expect(sorted(m.tables)).toEqual(sorted(expected));
            if (format === "plain") {
                expect(m.toc).toBeUndefined();
            } else {
                expect(m.toc.some((e: any) => e.desc === "TABLE DATA" && e.schema === "we.ird" && e.name === "Mixed Case")).toBe(true);
                expect(m.toc.filter((e: any) => e.desc === "BLOBS")).toHaveLength(1);
            }
            // One read of the table: pg_dump's COPY, no count(*) beside it.
            await new Promise((resolve) => setTimeout(resolve, 700));
            const after = Number(pg.psql(DB, "SELECT sum(seq_scan) FROM pg_stat_user_tables WHERE relname = 'many'"));
            expect(after - before).toBe(1);
        }, 120_000);
    }

    it("verify and restore accept those counts: a parent's own rows, not its children's", async () => {
        const dir = path.join(work, "cli-custom");
        const name = readdirSync(path.join(dir, DB)).find((f) => f.endsWith(".dump"))!;
        const v = await runCli(["verify", "--backup", name, "--from", "local"], env(dir, verifyServerEnv(pg)));
        expect(v.code, v.stderr).toBe(0);
        const r = await runCli(["restore", "--into", "kx_counts_copy", "--backup", name, "--from", "local"], env(dir));
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(pg.psql("kx_counts_copy", ONLY_COUNTS))).toEqual(expected);
        expect(pg.psql("kx_counts_copy", "SELECT count(*) FROM parent")).toBe("31");
    }, 180_000);

    it("a pg_dump whose output stops mid-block yet exits 0: refused before any manifest, nothing left behind", async () => {
        const bin = path.join(work, "cutting-bin");
        mkdirSync(bin, { recursive: true });
        const real = path.join(PG_BIN, "pg_dump");
        writeFileSync(path.join(bin, "pg_dump"), `#!/bin/sh\nif [ "$1" = "--version" ]; then exec "${real}" --version; fi\n"${real}" "$@" | head -c 3000000\nexit 0\n`);
        chmodSync(path.join(bin, "pg_dump"), 0o755);
        const dir = path.join(work, "cli-cut");
        const r = await runCli(["backup", "--no-prune"], env(dir, { BACKUP_PG_BIN_DIR: bin }));
        expect(r.code).toBe(1);
        const msg = logLines(r.stderr).find((l) => l.level === "error")?.msg;
        expect(msg).toMatch(/^backup of kx_counts failed: the dump stops mid-block inside the data of TABLE DATA .* its output was cut short/);
        const left = (() => {
            try {
                return readdirSync(path.join(dir, DB));
            } catch {
                return [];
            }
        })();
        expect(left).toEqual([]);
    }, 120_000);
});

describe("the tap passes the dump on in 1 MiB buffers, not the pipe's 64 KiB reads", () => {
    it("every buffer but the last is 1 MiB, and the bytes are the same", async () => {
        const rows = Array.from({ length: 60_000 }, (_, i) => `${i}\tpair-${i % 7}\t${(i * 37) % 1000}.5\n`).join("");
        const text = Buffer.from(`COPY public.t (id, pair, price) FROM stdin;\n${rows}\\.\n\n`.repeat(2));
        expect(text.length).toBeGreaterThan(2 * 1024 * 1024);
        const counter = new DumpStreamCounter("plain", { maxInFlight: 256 * 1024 });
        try {
            const sizes: number[] = [];
            const back: Buffer[] = [];
            const source = Readable.from((function* () {
                for (let i = 0; i < text.length; i += 65536) {
                    yield text.subarray(i, i + 65536);
                }
            })());
            for await (const chunk of counter.tap(source)) {
                sizes.push((chunk as Buffer).length);
                back.push(Buffer.from(chunk as Buffer));
            }
            expect(Buffer.concat(back).equals(text)).toBe(true);
            expect(sizes.slice(0, -1).every((n) => n === 1024 * 1024)).toBe(true);
            expect(sizes.length).toBe(Math.ceil(text.length / (1024 * 1024)));
        } finally {
            await counter.close();
        }
    });
});
