/**
 * The dump readers as pure code: the COPY row counter at every split point, the plain-SQL
 * tokenizer against SQL that imitates COPY data, and archive versions 1.15 (pg_dump 16) and 1.16
 * (pg_dump 17) built from PostgreSQL's source layout (this machine has only pg_dump 15), plus
 * the versions and kinds of dump that must be refused rather than misread.
 */
import { execFileSync } from "child_process";
import { mkdtempSync, rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { DumpFormatError, parseArchiveToc } from "../../jobs/src/dumpstream/archive";
import { CopyRowCounter } from "../../jobs/src/dumpstream/copyrows";
import { tableCounts } from "../../jobs/src/dumpstream/counts";
import { parseCopyTarget } from "../../jobs/src/dumpstream/plain";
import { createDumpReader, DumpFormat } from "../../jobs/src/dumpstream";
import { archiveHead, blobsBlock, dataBlock, TestEntry } from "../helpers/archiveWriter";

/** A tar of these files, made by GNU tar as the job makes it. */
function tarOf(files: [string, Buffer][]): Buffer {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kx-tar-"));
    try {
        for (const [name, data] of files) {
            writeFileSync(path.join(dir, name), data);
        }
        return execFileSync("tar", ["-cf", "-", "-C", dir, "."], { maxBuffer: 64 * 1024 * 1024 });
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

function countSplit(text: string, at: number[]): number {
    const c = new CopyRowCounter("t");
    const buf = Buffer.from(text);
    let from = 0;
    for (const cut of [...at, buf.length]) {
        c.push(buf.subarray(from, cut));
        from = cut;
    }
    return c.finish();
}

async function read(format: DumpFormat, buf: Buffer, piece = 3): Promise<ReturnType<ReturnType<typeof createDumpReader>["end"]>> {
    const r = createDumpReader(format);
    for (let i = 0; i < buf.length; i += piece) {
        await r.push(buf.subarray(i, i + piece));
    }
    return r.end();
}

describe("COPY row counter", () => {
    const cases: [string, string, number][] = [
        ["rows then pg_dump's end marker", "1\ta\n2\tb\n\\.\n\n\n", 2],
        ["escaped newline, tab, backslash inside values", "a\\nb\\tc\\\\d\n\\\\.\n\\N\n\\.\n\n\n", 3],
        ["empty strings in a single-column table are rows", "\n\n\n\\.\n\n\n", 3],
        ["a value '.' and a value '\\.' (written \\\\.)", ".\n\\\\.\n\\.\n\n\n", 2],
        ["no rows", "\\.\n\n\n", 0],
        ["no end marker: every line is a row", "1\n2\n3\n", 3],
    ];
    for (const [name, text, rows] of cases) {
        it(`${name}: ${rows}, whatever the split`, () => {
            for (let i = 0; i <= text.length; i++) {
                for (let j = i; j <= Math.min(text.length, i + 3); j++) {
                    expect(countSplit(text, [i, j]), `split at ${i},${j}`).toBe(rows);
                }
            }
        });
    }

    it("data stopping inside a row, or text after the end marker, is refused", () => {
        expect(() => countSplit("1\n2", [])).toThrow(/ends inside a row/);
        expect(() => countSplit("1\n\\.\n2\n", [])).toThrow(/continues after the end-of-data marker/);
    });
});

describe("plain SQL: only top-level COPY ... FROM stdin is data", () => {
    const wrap = (body: string) => Buffer.from(`\\restrict k1\nSET standard_conforming_strings = on;\n${body}\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k1\n\n`);

    it("ignores COPY statements, data lines, lo_open calls and the closing comment inside strings, dollar quotes and comments", async () => {
        const sql = [
            "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $fn$",
            "COPY public.t (a) FROM stdin;",
            "1",
            "\\.",
            "SELECT pg_catalog.lo_open('1', 131072);",
            "$fn$;",
            "COMMENT ON TABLE t IS E'it\\'s\\nCOPY public.t (a) FROM stdin;\\n-- PostgreSQL database dump complete';",
            "COMMENT ON COLUMN t.a IS 'C:\\';",
            "/* nested /* COPY public.t (a) FROM stdin; */ still a comment; */",
            "SELECT $1, a$b$c FROM \"q;\"\"uoted$$\"; -- COPY public.t (a) FROM stdin;",
            "COPY public.t (a, \"b)\", \"c \"\"d\"\"\") FROM stdin;",
            "x\ty\tz",
            "\\N\t\t",
            "\\.",
            "",
            "SELECT pg_catalog.lo_open('16390', 131072);",
            "SELECT pg_catalog.lowrite(0, '\\x0a0a');",
            "SELECT pg_catalog.lo_close(0);",
        ].join("\n");
        const counts = await read("plain", wrap(sql));
        expect(counts.tables).toEqual([{ schema: "public", name: "t", rows: 2 }]);
        expect(counts.largeObjects).toBe(1);
    });

    it("with standard_conforming_strings off, a backslash escapes a quote in '...'", async () => {
        const sql = "SET standard_conforming_strings = off;\nCOMMENT ON TABLE t IS 'it\\'s;\nCOPY public.t (a) FROM stdin;\n';\nCOPY public.t (a) FROM stdin;\n1\n\\.\n";
        const counts = await read("plain", Buffer.from(`${sql}-- PostgreSQL database dump complete\n`));
        expect(counts.tables).toEqual([{ schema: "public", name: "t", rows: 1 }]);
    });

    it("reads quoted, dotted and keyword names from COPY statements", () => {
        expect(parseCopyTarget('COPY "we.ird"."it\'s a ""table"" FROM stdin; x" (v) FROM stdin')).toEqual({ schema: "we.ird", name: 'it\'s a "table" FROM stdin; x' });
        expect(parseCopyTarget('COPY public."select" ("from") FROM stdin')).toEqual({ schema: "public", name: "select" });
        expect(parseCopyTarget("COPY public.t FROM stdin")).toEqual({ schema: "public", name: "t" });
        expect(parseCopyTarget("COPY public.t TO stdout")).toBeUndefined();
    });

    it("a dump opened with \\restrict but never closed with \\unrestrict was cut short", async () => {
        await expect(read("plain", Buffer.from("\\restrict k1\nSELECT 1;\n-- PostgreSQL database dump complete\n"))).rejects.toThrow(/cut short/);
    });
});

const TABLE = (id: number, name: string): TestEntry => ({ id, desc: "TABLE", schema: "public", name, relkind: 114 });
const DATA = (id: number, name: string, schema = "public"): TestEntry => ({ id, desc: "TABLE DATA", schema, name, hadDumper: true, copyStmt: `COPY ${schema}.${name} (a) FROM stdin;\n`, filename: `${id}.dat` });

describe("archive versions 1.15 (pg_dump 16) and 1.16 (pg_dump 17), from the source's layout", () => {
    for (const compressed of [true, false]) {
        it(`1.15, ${compressed ? "gzip" : "no compression"}: header's algorithm byte, counts`, async () => {
            const entries = [TABLE(10, "a"), TABLE(11, "b"), DATA(20, "a"), DATA(21, "b"), { id: 30, desc: "BLOBS", name: "BLOBS", hadDumper: true }];
            const dump = Buffer.concat([
                archiveHead({ minor: 15, compression: compressed ? 1 : 0, entries }),
                dataBlock(20, "1\n2\n3\n\\.\n\n\n", compressed),
                dataBlock(21, `${"x".repeat(100_000)}\n\\.\n\n\n`, compressed, 777),
                blobsBlock(30, [{ oid: 16400, data: Buffer.from("hi") }, { oid: 16401, data: Buffer.alloc(0) }], compressed),
            ]);
            const counts = await read("custom", dump, 5);
            expect(counts.tables).toEqual([{ schema: "public", name: "a", rows: 3 }, { schema: "public", name: "b", rows: 1 }]);
            expect(counts.largeObjects).toBe(2);
            expect(counts.archive).toMatchObject({ version: "1.15.0", compression: compressed ? "gzip" : "none" });
        });
    }

    it("1.16: relkind in every entry, BLOB METADATA entries and several BLOBS entries", async () => {
        const entries: TestEntry[] = [
            TABLE(10, "a"),
            { id: 12, desc: "BLOB METADATA", name: "16400..16401", relkind: 0 },
            DATA(20, "a"),
            { id: 30, desc: "BLOBS", name: "BLOBS 16400..16401", hadDumper: true },
            { id: 31, desc: "BLOBS", name: "BLOBS 16402..16402", hadDumper: true },
        ];
        const dump = Buffer.concat([
            archiveHead({ minor: 16, compression: 1, entries }),
            dataBlock(20, "1\n\\.\n\n\n", true),
            blobsBlock(30, [{ oid: 16400, data: Buffer.from("a") }, { oid: 16401, data: Buffer.from("b") }], true),
            blobsBlock(31, [{ oid: 16402, data: Buffer.from("c") }], true),
        ]);
        const counts = await read("custom", dump, 4);
        expect(counts.tables).toEqual([{ schema: "public", name: "a", rows: 1 }]);
        expect(counts.largeObjects).toBe(3);
        expect(counts.toc!.map((e) => e.desc)).toEqual(["TABLE", "BLOB METADATA", "TABLE DATA", "BLOBS", "BLOBS"]);
    });

    it("1.16 directory (toc.dat says tar): blobs_NNN.toc per BLOBS entry", async () => {
        const entries: TestEntry[] = [TABLE(10, "a"), DATA(20, "a"), { id: 30, desc: "BLOBS", name: "BLOBS", hadDumper: true, filename: "blobs_30.toc" }, { id: 31, desc: "BLOBS", name: "BLOBS", hadDumper: true, filename: "blobs_31.toc" }];
        const { gzipSync } = await import("zlib");
        const tar = tarOf([
            ["toc.dat", archiveHead({ minor: 16, format: 3, compression: 1, entries })],
            ["20.dat.gz", gzipSync("1\n2\n\\.\n\n\n")],
            ["blobs_30.toc", Buffer.from("16400 blob_16400.dat\n16401 blob_16401.dat\n")],
            ["blob_16400.dat.gz", gzipSync("a")],
            ["blobs_31.toc", Buffer.from("16402 blob_16402.dat\n")],
        ]);
        const counts = await read("directory", tar, 1000);
        expect(counts.tables).toEqual([{ schema: "public", name: "a", rows: 2 }]);
        expect(counts.largeObjects).toBe(3);
    });
});

describe("refused rather than misread", () => {
    for (const minor of [13, 17]) {
        it(`archive version 1.${minor}`, async () => {
            const dump = archiveHead({ minor, compression: 1, entries: [] });
            expect(() => parseArchiveToc(dump)).toThrow(new RegExp(`version 1\\.${minor}\\.0 is not supported: kx-backup reads 1\\.14 to 1\\.16`));
            await expect(read("custom", dump)).rejects.toThrow(/not supported/);
        });
    }

    it("lz4 or zstd data: the table of contents reads, the counting is refused", async () => {
        for (const [algorithm, name] of [[2, "lz4"], [3, "zstd"]] as const) {
            const dump = archiveHead({ minor: 15, compression: algorithm, entries: [TABLE(10, "a"), DATA(20, "a")] });
            expect(parseArchiveToc(dump).header.compression).toBe(name);
            await expect(read("custom", dump)).rejects.toThrow(new RegExp(`compressed with ${name}: rows are counted in gzip-compressed or uncompressed dumps only`));
        }
    });

    it("table data written as INSERT statements", async () => {
        const dump = archiveHead({ minor: 14, compression: 0, entries: [TABLE(10, "a"), { ...DATA(20, "a"), copyStmt: "" }] });
        await expect(read("custom", dump)).rejects.toThrow(/INSERT statements \(pg_dump --inserts\)/);
    });

    it("a data block for an entry the TOC does not list, or a second one for the same entry", async () => {
        const head = archiveHead({ minor: 14, compression: 0, entries: [TABLE(10, "a"), DATA(20, "a")] });
        await expect(read("custom", Buffer.concat([head, dataBlock(99, "\\.\n", false)]))).rejects.toThrow(/entry 99, which the table of contents does not list/);
        await expect(read("custom", Buffer.concat([head, dataBlock(20, "\\.\n", false), dataBlock(20, "\\.\n", false)]))).rejects.toThrow(/a second data block for TABLE DATA public\.a \(entry 20\)/);
        await expect(read("custom", Buffer.concat([head, Buffer.from([7])]))).rejects.toThrow(/unexpected data block type 7/);
    });

    it("a dump that ends between blocks, before an entry's data", async () => {
        const head = archiveHead({ minor: 14, compression: 0, entries: [TABLE(10, "a"), DATA(20, "a"), DATA(21, "b")] });
        await expect(read("custom", Buffer.concat([head, dataBlock(20, "\\.\n", false)]))).rejects.toThrow(/ends before the data of 1 entry \(first: TABLE DATA public\.b \(entry 21\)\).*cut short/);
    });
});

describe("which tables the manifest lists", () => {
    it("every TABLE DATA entry, except an extension's configuration table (data without a TABLE entry)", () => {
        const entries = [TABLE(10, "a"), DATA(20, "a"), DATA(21, "ext_config")].map((e) => ({ ...e, schema: e.schema ?? "", owner: "o", hadDumper: Boolean(e.hadDumper), copyStmt: e.copyStmt ?? "" }));
        expect(tableCounts(entries, new Map([[20, 5], [21, 2]]))).toEqual([{ schema: "public", name: "a", rows: 5 }]);
        // A data-only dump has no TABLE entries at all: every TABLE DATA entry counts.
        expect(tableCounts(entries.filter((e) => e.desc !== "TABLE"), new Map([[20, 5], [21, 2]]))).toHaveLength(2);
    });

    it("DumpFormatError is what callers catch", () => {
        expect(() => parseArchiveToc(Buffer.from("not a dump"))).toThrow(DumpFormatError);
    });
});
