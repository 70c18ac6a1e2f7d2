/**
 * Hostile review of counting from the dump stream and comparing restored counts, without a
 * server: partitions loaded through their root (pg_dump forces it for hash partitioning on an
 * enum), names in a LATIN1 or WIN1251 database, a million large objects, a `--tables` restore of
 * a partition whose rows would load elsewhere.
 */
import { describe, expect, it } from "vitest";
import type { Client } from "pg";
import { anomalyReasons } from "../../jobs/src/anomaly";
import { partitionsLeftOut, PartitionedTable } from "../../jobs/src/backup";
import { createDumpReader, DumpFormat } from "../../jobs/src/dumpstream";
import { parseArchiveToc } from "../../jobs/src/dumpstream/archive";
import { tableCounts } from "../../jobs/src/dumpstream/counts";
import { existsSync, mkdtempSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { compareCounts, compareLargeObjects, compareRestored, countChecks, parseSequenceValues } from "../../jobs/src/restore/compare";
import { loadSettings } from "../../jobs/src/settings";
import { decodeScript } from "../../jobs/src/restore/tools";
import { checkTables } from "../../jobs/src/restore/tables";
import type { Prepared } from "../../jobs/src/restore/prepare";
import type { Manifest } from "../../jobs/src/manifest";
import type { Settings } from "../../jobs/src/settings";
import { archiveHead, dataBlock, TestEntry } from "../helpers/archiveWriter";
import { manifestFor } from "../helpers/manifests";

async function read(format: DumpFormat, buf: Buffer, piece = 7) {
    const r = createDumpReader(format);
    for (let i = 0; i < buf.length; i += piece) {
        await r.push(buf.subarray(i, i + piece));
    }
    return r.end();
}

const plainDump = (body: string | Buffer) =>
    Buffer.concat([
        Buffer.from("SET standard_conforming_strings = on;\n"),
        typeof body === "string" ? Buffer.from(body) : body,
        Buffer.from("\n--\n-- PostgreSQL database dump complete\n--\n\n"),
    ]);

const entry = (e: TestEntry) => ({ schema: "public", owner: "o", hadDumper: false, copyStmt: "", ...e }) as Parameters<typeof tableCounts>[0][number];

describe("partitions loaded through their root (load-via-partition-root)", () => {
    // What pg_dump writes for a tree hash-partitioned on an enum: each partition's TABLE DATA
    // entry carries a COPY into the root. Restored, the rows land wherever the new root's hash sends them.
    const viaRoot = (id: number, leaf: string): TestEntry => ({ id, desc: "TABLE DATA", schema: "public", name: leaf, hadDumper: true, copyStmt: "COPY public.orders (id, state) FROM stdin;\n" });
    const entries: TestEntry[] = [
        { id: 1, desc: "TABLE", schema: "public", name: "orders" },
        { id: 2, desc: "TABLE", schema: "public", name: "orders_p0" },
        { id: 3, desc: "TABLE", schema: "public", name: "orders_p1" },
        { id: 4, desc: "TABLE", schema: "public", name: "plain" },
        viaRoot(10, "orders_p0"),
        viaRoot(11, "orders_p1"),
        { id: 12, desc: "TABLE DATA", schema: "public", name: "plain", hadDumper: true, copyStmt: "COPY public.plain (a) FROM stdin;\n" },
    ];

    it("custom format: the rows count toward the root the COPY loads, summed, not toward each partition", async () => {
        const dump = Buffer.concat([
            archiveHead({ minor: 14, compression: -1, entries }),
            dataBlock(10, "1\tnew\n2\tnew\n\\.\n\n\n", true),
            dataBlock(11, "3\tpaid\n\\.\n\n\n", true),
            dataBlock(12, "x\n\\.\n\n\n", true),
        ]);
        const counts = await read("custom", dump);
        expect(counts.tables).toEqual([{ schema: "public", name: "orders", rows: 3 }, { schema: "public", name: "plain", rows: 1 }]);
    });

    it("tableCounts: the same rule for directory-format entries, one entry per load target", () => {
        const rows = new Map([[10, 2], [11, 1], [12, 1]]);
        expect(tableCounts(entries.map(entry), rows)).toEqual([{ schema: "public", name: "orders", rows: 3 }, { schema: "public", name: "plain", rows: 1 }]);
    });

    it("plain format: two COPY blocks into one root are one table with their sum", async () => {
        const sql = "COPY public.orders (id, state) FROM stdin;\n1\tnew\n2\tnew\n\\.\n\nCOPY public.orders (id, state) FROM stdin;\n3\tpaid\n\\.\n\n";
        const counts = await read("plain", plainDump(sql));
        expect(counts.tables).toEqual([{ schema: "public", name: "orders", rows: 3 }]);
    });

    it("verify compares a partitioned table's whole tree: its rows plus what the manifest lists below it", () => {
        const manifest = {
            counts: { method: "dump-stream" as const },
            tables: [{ schema: "public", name: "orders", rows: 3 }, { schema: "public", name: "orders_direct", rows: 4 }, { schema: "public", name: "plain", rows: 1 }],
        };
        const trees = new Map([["public\u0000orders", ["public\u0000orders_p0", "public\u0000orders_p1", "public\u0000orders_direct"]]]);
        const checks = countChecks(manifest, trees);
        expect(checks.map((c) => [c.table.name, c.expected, c.tree, c.sql])).toEqual([
            ["orders", 7, true, 'SELECT count(*)::text AS n FROM "public"."orders"'],
            ["orders_direct", 4, false, 'SELECT count(*)::text AS n FROM ONLY "public"."orders_direct"'],
            ["plain", 1, false, 'SELECT count(*)::text AS n FROM ONLY "public"."plain"'],
        ]);
        // Manifests counted by query (before dump-stream counting) counted trees already.
        expect(countChecks({ ...manifest, counts: { method: "snapshot-query" } }, trees).every((c) => !c.tree && c.expected === manifest.tables.find((t) => t.name === c.table.name)!.rows)).toBe(true);
    });

    it("restore --tables of such a partition is refused before anything is touched (its rows would load into other partitions)", async () => {
        const p = {
            toc: entries.map((e) => ({ id: e.id, desc: e.desc, schema: e.schema ?? "", name: e.name, owner: "o" })),
            located: { manifest: { counts: { method: "dump-stream" }, tables: [{ schema: "public", name: "orders", rows: 3 }, { schema: "public", name: "plain", rows: 1 }] } as unknown as Manifest },
        } as unknown as Prepared;
        // No server: the refusal comes before any connection (a connection would fail on port 1).
        const server = { pgHost: "127.0.0.1", pgPort: 1, pgUser: "nobody" } as unknown as Settings;
        const err = await checkTables(server, "db", p, [{ schema: "public", name: "orders_p0" }], true).catch((e) => e);
        expect(err.exitCode).toBe(2);
        expect(err.message).toMatch(/no row count of public\.orders_p0 on its own: its rows load through its partition root.*restore the whole database/);
    });
});

describe("names in the dump's own encoding, not UTF-8", () => {
    const latin1 = (s: string) => Buffer.from(s, "latin1");

    it("custom format, a LATIN1 database: café and cafè stay two tables, spelled right", async () => {
        const encodingEntry: TestEntry = { id: 1, desc: "ENCODING", name: "ENCODING", defn: "SET client_encoding = 'LATIN1';\n" };
        const table = (id: number, name: string): TestEntry => ({ id, desc: "TABLE", schema: "public", name: "?", rawName: latin1(name) });
        const data = (id: number, name: string): TestEntry => ({
            id, desc: "TABLE DATA", schema: "public", name: "?", rawName: latin1(name), hadDumper: true, rawCopyStmt: latin1(`COPY public."${name}" (a) FROM stdin;\n`),
        });
        const dump = Buffer.concat([
            archiveHead({ minor: 14, compression: 0, entries: [encodingEntry, table(2, "café"), table(3, "cafè"), data(4, "café"), data(5, "cafè")] }),
            dataBlock(4, "1\n2\n\\.\n\n\n", false),
            dataBlock(5, "1\n\\.\n\n\n", false),
        ]);
        const counts = await read("custom", dump);
        expect(counts.tables).toEqual([{ schema: "public", name: "café", rows: 2 }, { schema: "public", name: "cafè", rows: 1 }]);
        expect(parseArchiveToc(dump).entries.filter((e) => e.desc === "TABLE").map((e) => e.name)).toEqual(["café", "cafè"]);
    });

    it("plain format, a WIN1251 database: the COPY's Cyrillic name is decoded with the dump's client_encoding", async () => {
        // "заказы" in windows-1251, byte for byte.
        const name = Buffer.from([0xe7, 0xe0, 0xea, 0xe0, 0xe7, 0xfb]);
        const body = Buffer.concat([Buffer.from("SET client_encoding = 'WIN1251';\nCOPY public.\""), name, Buffer.from("\" (a) FROM stdin;\n1\n2\n3\n\\.\n\n")]);
        const counts = await read("plain", plainDump(body));
        expect(counts.tables).toEqual([{ schema: "public", name: "заказы", rows: 3 }]);
    });

    it("SQL printed by pg_restore and pg_dump (sequence values, schema) is read in the encoding it declares", () => {
        const sql = Buffer.concat([Buffer.from("SET client_encoding = 'LATIN1';\nSELECT pg_catalog.setval('"), latin1('"rèçu"."café_id_seq"'), Buffer.from("', 2, true);\n")]);
        expect(parseSequenceValues(decodeScript(sql))).toEqual([{ name: '"rèçu"."café_id_seq"', value: "2", called: true }]);
        expect(decodeScript(Buffer.from("SET client_encoding = 'UTF8';\nCOMMENT ON TABLE t IS 'naïve';\n"))).toContain("naïve");
    });

    it("a UTF-8 dump reads as before", async () => {
        const counts = await read("plain", plainDump("SET client_encoding = 'UTF8';\nCOPY \"схема\".\"naïve ✓\" (a) FROM stdin;\n1\n\\.\n\n"));
        expect(counts.tables).toEqual([{ schema: "схема", name: "naïve ✓", rows: 1 }]);
    });
});

describe("plain COPY statements the reader cannot place", () => {
    it("are refused, never read as SQL (their rows would be miscounted and could reach a message)", async () => {
        const secret = "4111-1111-1111-1111; COPY x FROM stdin;";
        const sql = `COPY public.(a) FROM stdin;\n${secret}\n\\.\n\n`;
        const err: Error = await read("plain", plainDump(sql)).catch((e) => e);
        expect(err.message).toMatch(/COPY \.\.\. FROM stdin statement whose table name kx-backup cannot read/);
        expect(err.message).not.toContain("4111");
    });
});

describe("large objects compared by set, not by scanning a list per object", () => {
    it("200,000 large objects compare in well under a second", async () => {
        const oids = Array.from({ length: 200_000 }, (_, i) => String(16_384 + i));
        const client = { query: async () => ({ rows: oids.map((oid) => ({ oid })) }) } as unknown as Client;
        const started = Date.now();
        const result = await compareLargeObjects(client, [...oids].reverse(), {} as Manifest);
        expect(result.ok).toBe(true);
        expect(Date.now() - started).toBeLessThan(2_000);
        const short = await compareLargeObjects(client, oids.slice(1), {} as Manifest);
        expect(short).toMatchObject({ ok: false, detail: "large objects differ: 0 missing, 1 unexpected (dump has 199999)" });
    }, 120_000);
});

describe("backup --table of a partitioned table without its partitions", () => {
    const events: PartitionedTable = {
        schema: "public", name: "events", visible: true,
        leaves: [{ schema: "public", name: "events_2025", visible: true }, { schema: "public", name: "events_2026", visible: true }],
    };
    const weird: PartitionedTable = { schema: "We.ird", name: "Log", visible: false, leaves: [{ schema: "We.ird", name: "Log_1", visible: false }] };

    it("is refused before pg_dump runs, naming the partitions it would leave out and a pattern that takes them", () => {
        expect(partitionsLeftOut(["events"], [events, weird])).toEqual([
            "--table selects the partitioned table public.events but not its partitions public.events_2025, public.events_2026: pg_dump would save none of their rows. " +
                "Add them (e.g. --table 'public.events*'), or back up the whole database",
        ]);
        expect(partitionsLeftOut(['"We.ird"."Log"'], [events, weird])[0]).toMatch(/partitioned table "We\.ird"\."Log" but not its partitions "We\.ird"\."Log_1".*--table '"We\.ird"\."Log"\*'/);
        // Only a partition named too: still one left out.
        expect(partitionsLeftOut(["events", "events_2025"], [events])[0]).toMatch(/not its partitions public\.events_2026:/);
    });

    it("passes when the partitions are selected too, when it is not selected, and for patterns pg_dump reads otherwise", () => {
        expect(partitionsLeftOut(["events*"], [events])).toEqual([]);
        expect(partitionsLeftOut(["public.events", "public.events_20*"], [events])).toEqual([]);
        expect(partitionsLeftOut(["orders"], [events])).toEqual([]);
        // Unqualified patterns match only tables visible on the search path, as in pg_dump.
        expect(partitionsLeftOut(["Log"], [weird])).toEqual([]);
        // A pattern this cannot read (three parts) selects nothing here: pg_dump judges it.
        expect(partitionsLeftOut(["db.public.events"], [events])).toEqual([]);
    });
});

describe("the first backup counting partitions at their root, against a baseline that counted each", () => {
    const t = { sizeDropPercent: 50, rowsDropPercent: 50, minRows: 1000 };
    const leaf = (name: string) => ({ id: 1, desc: "TABLE DATA", schema: "public", name, owner: "o" });
    const baseline = manifestFor("ce/ce-20260101-000000-aaaaaa.dump", "x", { tables: [{ schema: "public", name: "orders_p0", rows: 3000 }, { schema: "public", name: "orders_p1", rows: 2000 }] });
    const current = (rootRows: number) =>
        manifestFor("ce/ce-20260102-000000-bbbbbb.dump", "x", { tables: [{ schema: "public", name: "orders", rows: rootRows }], toc: [leaf("orders_p0"), leaf("orders_p1")] });

    it("is not 'table gone' (a pager for a rule change) while the partitions are still dumped and their rows are all there", () => {
        expect(anomalyReasons(current(5000), baseline, t)).toEqual([]);
    });

    it("still flags those rows dropping as a whole, and a partition no longer dumped at all", () => {
        expect(anomalyReasons(current(1000), baseline, t)).toEqual(["2 partition(s) now counted at their root: 5000 → 1000 rows (-80 %)"]);
        const gone = manifestFor("ce/ce-20260102-000000-bbbbbb.dump", "x", { tables: [{ schema: "public", name: "orders", rows: 3000 }], toc: [leaf("orders_p0")] });
        expect(anomalyReasons(gone, baseline, t)).toEqual(["public.orders_p1: table gone (had 2000 rows)"]);
    });
});

describe("row counts on several connections at once", () => {
    // A fake connection: counts from a table of what the "database" holds, slower for bigger tables.
    const holds: Record<string, number> = { small: 10, big: 5_000, mid: 700 };
    const fake = (name: string, log: string[]) => ({
        query: async (sql: string) => {
            if (/pg_partition_tree/.test(sql)) {
                return { rows: [] };
            }
            const table = /"public"\."(\w+)"/.exec(sql)![1];
            log.push(`${name}:${table}`);
            await new Promise((r) => setTimeout(r, holds[table] / 100));
            return { rows: [{ n: String(table === "mid" ? holds[table] + 1 : holds[table]) }] };
        },
    }) as unknown as Client;
    const manifest = {
        counts: { method: "dump-stream" },
        tables: [{ schema: "public", name: "small", rows: 10 }, { schema: "public", name: "big", rows: 5_000 }, { schema: "public", name: "mid", rows: 700 }],
    } as unknown as Parameters<typeof compareCounts>[1];

    it("scans the largest tables first, on every connection, and reports in the manifest's order", async () => {
        const log: string[] = [];
        const r = await compareCounts([fake("a", log), fake("b", log)], manifest);
        expect(log.slice(0, 2).sort()).toEqual(["a:big", "b:mid"]);
        expect(new Set(log.map((l) => l.split(":")[0]))).toEqual(new Set(["a", "b"]));
        expect(r.ok).toBe(false);
        expect(r.detail).toBe("row counts differ from the backup's snapshot: public.mid: 701 rows, manifest says 700");
    });

    it("finds the same with one connection", async () => {
        const log: string[] = [];
        const r = await compareCounts(fake("a", log), manifest);
        expect(log).toEqual(["a:big", "a:mid", "a:small"]);
        expect(r.detail).toBe("row counts differ from the backup's snapshot: public.mid: 701 rows, manifest says 700");
    });
});

describe("compareRestored: the counts and the schema dump run together, and neither outlives it", () => {
    // A pg_dump that takes its time, then leaves a mark: it must have ended (or been waited for) when compareRestored settles.
    const slowDump = (mark: string, exit: number, delay: string) => {
        const dir = mkdtempSync(path.join(tmpdir(), "kx-tools-"));
        writeFileSync(path.join(dir, "pg_dump"), `#!/bin/sh\nsleep ${delay}\necho done > ${mark}\nexit ${exit}\n`, { mode: 0o755 });
        return { dir, major: 15, version: "15.0" };
    };
    const settings = loadSettings({ BACKUP_LOCAL_DIR: "/b" }) as unknown as { ok: true; settings: Settings };
    const manifest = {
        counts: { method: "dump-stream" },
        tables: [{ schema: "public", name: "a", rows: 1 }, { schema: "public", name: "b", rows: 2 }],
    } as unknown as Manifest;
    const expected = { schemaSql: "CREATE TABLE a();", databaseText: "x" };

    it("a count connection that fails does not leave the schema dump running behind it", async () => {
        const mark = path.join(mkdtempSync(path.join(tmpdir(), "kx-mark-")), "m");
        const client = { query: async () => { throw new Error("connection lost"); }, end: async () => undefined } as unknown as Client;
        await expect(compareRestored(settings.settings, "x", { tools: slowDump(mark, 0, "0.5"), expected, located: { manifest } }, async () => client, 2)).rejects.toThrow(/connection lost/);
        expect(existsSync(mark), "pg_dump still running after compareRestored failed").toBe(true);
    });

    it("a schema dump that fails does not end the connections under counts still running", async () => {
        const events: string[] = [];
        const client = (name: string) => ({
            query: async (sql: string) => {
                if (/pg_partition_tree/.test(sql)) {
                    return { rows: [] };
                }
                await new Promise((r) => setTimeout(r, 300));
                events.push(`${name}: counted`);
                return { rows: [{ n: "1" }] };
            },
            end: async () => void events.push(`${name}: ended`),
        }) as unknown as Client;
        let n = 0;
        const mark = path.join(mkdtempSync(path.join(tmpdir(), "kx-mark-")), "m");
        await expect(compareRestored(settings.settings, "x", { tools: slowDump(mark, 1, "0"), expected, located: { manifest } }, async () => client(`c${n++}`), 2)).rejects.toThrow(/pg_dump/);
        expect(events.filter((e) => e.endsWith("ended")).length).toBe(2);
        expect(events.filter((e) => e.endsWith("counted")).length).toBe(2);
        expect(events.findIndex((e) => e.endsWith("ended"))).toBeGreaterThan(events.findLastIndex((e) => e.endsWith("counted")));
    });
});
