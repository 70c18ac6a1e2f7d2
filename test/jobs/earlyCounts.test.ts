/**
 * Counting a restored table as soon as pg_restore has loaded it (restore/earlyCounts.ts): which
 * tables may be counted early, what pg_restore's verbose lines mean, and compareCounts taking
 * those counts instead of scanning again. With fake connections: no server needed.
 */
import { mkdtempSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { Client } from "pg";
import { describe, expect, it } from "vitest";
import { Manifest, TocEntry } from "../../jobs/src/manifest";
import { compareCounts } from "../../jobs/src/restore/compare";
import { CountsDuringRestore, finishedTableData, isRestoreProgress } from "../../jobs/src/restore/earlyCounts";
import { startTool } from "../../jobs/src/restore/tools";

const entry = (id: number, desc: string, name: string, schema = "public"): TocEntry => ({ id, desc, schema, name, owner: "o" }) as TocEntry;
const manifestOf = (method: string, tables: { name: string; rows: number }[]) =>
    ({ counts: { method }, tables: tables.map((t) => ({ schema: "public", ...t })) }) as unknown as Manifest;

/** A fake connection: `kinds` says which tables are ordinary and not partitions; `rows` what each holds. */
function fakeServer(kinds: Record<string, boolean>, rows: Record<string, number>, log: string[] = []) {
    let ended = 0;
    const client = {
        query: async (sql: string, params?: string[]) => {
            if (/relkind/.test(sql)) {
                return { rows: params![1] in kinds ? [{ ok: kinds[params![1]] }] : [] };
            }
            if (/pg_partition_tree/.test(sql)) {
                return { rows: [] };
            }
            const table = /"public"\."(\w+)"/.exec(sql)![1];
            log.push(`${/ONLY/.test(sql) ? "ONLY " : ""}${table}`);
            await new Promise((r) => setTimeout(r, 5));
            return { rows: [{ n: String(rows[table]) }] };
        },
        end: async () => void ended++,
    } as unknown as Client;
    return { client, log, ended: () => ended };
}

describe("pg_restore --verbose lines", () => {
    it("reads the id of a TABLE DATA entry finished, and nothing else", () => {
        expect(finishedTableData("pg_restore: finished item 3343 TABLE DATA trades_b")).toBe(3343);
        expect(finishedTableData("pg_restore: finished item 3343 INDEX trades_idx")).toBeUndefined();
        expect(finishedTableData("pg_restore: launching item 3343 TABLE DATA trades_b")).toBeUndefined();
        // A table whose name holds a newline and a forged line: the forged part is a line of its own, not at its start.
        expect(finishedTableData("x pg_restore: finished item 9 TABLE DATA y")).toBeUndefined();
    });

    it("takes progress out of a failure's message, keeps errors, warnings and details", () => {
        for (const l of ["pg_restore: finished item 5 TABLE DATA failed_logins", "pg_restore: processing data for table \"public.error_log\"",
            "pg_restore: creating TABLE \"public.t\"", "pg_restore: restoring large object with OID 16390", "pg_restore: entering main parallel loop"]) {
            expect(isRestoreProgress(l), l).toBe(true);
        }
        for (const l of ["pg_restore: error: could not execute query: ERROR:  boom", "pg_restore: warning: errors ignored on restore: 1",
            "pg_restore: detail: Command was: COPY t FROM stdin;", "Command was: CREATE TABLE t ();",
            "pg_restore: error: restoring data out of order is not supported in this archive format"]) {
            expect(isRestoreProgress(l), l).toBe(false);
        }
    });

    it("a failing pg_restore is reported by its error, not by a progress line after it naming a 'failed' table", async () => {
        const dir = mkdtempSync(path.join(tmpdir(), "kx-tools-"));
        writeFileSync(path.join(dir, "pg_restore"), [
            "#!/bin/sh",
            "echo 'pg_restore: finished item 4 TABLE DATA accounts' >&2",
            "printf 'pg_restore: error: could not execute query: ERROR:  disk full\\n' >&2",
            // the other worker finishes after the error, and a progress line ends without a newline
            "printf 'pg_restore: finished item 5 TABLE DATA failed_logins\\npg_restore: finished item 6 TABLE DATA failed_too' >&2",
            "exit 1",
        ].join("\n"), { mode: 0o755 });
        const seen: number[] = [];
        const run = startTool({ dir, major: 15, version: "15.0" }, "pg_restore", [], undefined, "pg_restore of x", "ignore", (line) => {
            const id = finishedTableData(line);
            if (id !== undefined) {
                seen.push(id);
            }
            return isRestoreProgress(line);
        });
        await expect(run.exited).rejects.toThrow(/^pg_restore of x failed: could not execute query: ERROR: {2}disk full$/);
        // The last line, cut short of its newline, is a line like the others.
        expect(seen).toEqual([4, 5, 6]);
    });
});

describe("CountsDuringRestore", () => {
    const toc = [entry(1, "TABLE", "a"), entry(2, "TABLE", "b"), entry(10, "TABLE DATA", "a"), entry(11, "TABLE DATA", "b"), entry(12, "TABLE DATA", "p1"), entry(13, "TABLE DATA", "kid")];

    it("counts a table of the manifest once pg_restore says its data is loaded, on one connection of its own", async () => {
        const server = fakeServer({ a: true, b: true }, { a: 3, b: 4 });
        const early = new CountsDuringRestore(manifestOf("dump-stream", [{ name: "a", rows: 3 }, { name: "b", rows: 4 }]), toc, async () => server.client);
        expect(early.enabled).toBe(true);
        early.loaded(10);
        early.loaded(10); // reported twice: counted once
        await new Promise((r) => setTimeout(r, 30));
        const got = early.stop();
        expect([...got.done]).toEqual([["public\u0000a", 3]]);
        expect(server.log).toEqual(["ONLY a"]);
        early.loaded(11); // after the restore ended: never counted early
        await early.end();
        await early.end();
        expect(server.log).toEqual(["ONLY a"]);
        expect(server.ended()).toBe(1);
    });

    it("leaves partitions, partitioned tables and anything not an ordinary table to the counts after the restore", async () => {
        // p1 loads through its root (not in the manifest); `a` is, on this server, a partition.
        const server = fakeServer({ a: false, b: true }, { a: 3, b: 4 });
        const early = new CountsDuringRestore(manifestOf("dump-stream", [{ name: "a", rows: 3 }, { name: "b", rows: 4 }, { name: "root", rows: 9 }]), toc, async () => server.client);
        early.loaded(12);
        early.loaded(10);
        early.loaded(11);
        await new Promise((r) => setTimeout(r, 40));
        expect([...early.stop().done]).toEqual([["public\u0000b", 4]]);
        await early.end();
        expect(server.log).toEqual(["ONLY b"]);
    });

    it("counts nothing early for a manifest whose counts include inheritance children (snapshot-query) or that has none", () => {
        for (const method of ["snapshot-query", "none"]) {
            const early = new CountsDuringRestore(manifestOf(method, [{ name: "a", rows: 3 }]), toc, async () => {
                throw new Error("must not connect");
            });
            expect(early.enabled, method).toBe(false);
        }
    });

    it("a count that fails (the connection refused, the table gone) is simply not taken", async () => {
        const early = new CountsDuringRestore(manifestOf("dump-stream", [{ name: "a", rows: 3 }]), toc, async () => {
            throw new Error("connection refused");
        });
        early.loaded(10);
        await early.end();
        expect(early.stop().done.size).toBe(0);
    });

    it("after a failed restore, end(false) ends the connection without waiting for a long count", async () => {
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let ended = false;
        const client = {
            query: async (sql: string) => (/relkind/.test(sql) ? { rows: [{ ok: true }] } : gate.then(() => ({ rows: [{ n: "3" }] }))),
            end: async () => void (ended = true),
        } as unknown as Client;
        const early = new CountsDuringRestore(manifestOf("dump-stream", [{ name: "a", rows: 3 }]), toc, async () => client);
        early.loaded(10);
        await new Promise((r) => setTimeout(r, 10));
        const t0 = Date.now();
        await early.end(false);
        expect(ended).toBe(true);
        expect(Date.now() - t0).toBeLessThan(50);
        release();
    });

    it("stop() hands over the count still running, which compareCounts waits for", async () => {
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const client = {
            query: async (sql: string) => {
                if (/relkind/.test(sql)) {
                    return { rows: [{ ok: true }] };
                }
                await gate;
                return { rows: [{ n: "3" }] };
            },
            end: async () => undefined,
        } as unknown as Client;
        const early = new CountsDuringRestore(manifestOf("dump-stream", [{ name: "a", rows: 3 }]), toc, async () => client);
        early.loaded(10);
        await new Promise((r) => setTimeout(r, 10));
        const got = early.stop();
        expect(got.done.size).toBe(0);
        expect(got.running?.key).toBe("public\u0000a");
        setTimeout(release, 20);
        await expect(got.running!.rows).resolves.toBe(3);
        await early.end();
    });
});

describe("compareCounts with counts taken during the restore", () => {
    const manifest = manifestOf("dump-stream", [{ name: "a", rows: 3 }, { name: "b", rows: 4 }, { name: "c", rows: 5 }]);

    it("scans only the tables not counted yet, and says how many were", async () => {
        const server = fakeServer({}, { a: 3, b: 4, c: 5 });
        const r = await compareCounts([server.client], manifest, { done: new Map([["public\u0000a", 3], ["public\u0000b", 4]]) });
        expect(server.log).toEqual(["ONLY c"]);
        expect(r).toEqual({ check: "counts", ok: true, detail: "3 table(s) match the snapshot's counts (2 counted as soon as the restore had loaded them)" });
    });

    it("never takes a partition tree's count from one table's early count: the tree is scanned whole", async () => {
        const log: string[] = [];
        const client = {
            query: async (sql: string) => {
                if (/pg_partition_tree/.test(sql)) {
                    return { rows: [{ s: "public", t: "root", ds: "public", dt: "p1" }] };
                }
                log.push(sql);
                return { rows: [{ n: "9" }] };
            },
        } as unknown as Client;
        const r = await compareCounts([client], manifestOf("dump-stream", [{ name: "root", rows: 9 }]), { done: new Map([["public\u0000root", 9]]) });
        expect(log).toEqual(['SELECT count(*)::text AS n FROM "public"."root"']);
        expect(r.detail).toBe("1 table(s) match the snapshot's counts");
    });

    it("an early count that differs fails the check, naming the table", async () => {
        const server = fakeServer({}, { a: 3, b: 4, c: 5 });
        const r = await compareCounts([server.client], manifest, { done: new Map([["public\u0000b", 40]]) });
        expect(r.ok).toBe(false);
        expect(r.detail).toBe("row counts differ from the backup's snapshot: public.b: 40 rows, manifest says 4");
    });

    it("waits for the count still running, and scans its table when that count could not be taken", async () => {
        const server = fakeServer({}, { a: 3, b: 4, c: 5 });
        const ok = await compareCounts([server.client], manifest, { done: new Map(), running: { key: "public\u0000c", rows: new Promise((r) => setTimeout(() => r(6), 20)) } });
        expect(server.log.sort()).toEqual(["ONLY a", "ONLY b"]);
        expect(ok.detail).toBe("row counts differ from the backup's snapshot: public.c: 6 rows, manifest says 5");
        const failed = await compareCounts([server.client], manifest, { done: new Map(), running: { key: "public\u0000c", rows: Promise.resolve(undefined) } });
        expect(server.log.filter((l) => l === "ONLY c")).toHaveLength(1);
        expect(failed.ok).toBe(true);
    });
});
