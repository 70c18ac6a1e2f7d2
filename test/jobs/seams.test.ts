/**
 * The seams between work written in parallel: manifests of different generations side by side,
 * a target that cannot be read next to one that can, a command run from another database's job
 * template. Each test is a way found to raise a false alarm, hide a failure or delete what is
 * still needed, and fails without its fix. No PostgreSQL here (seams.e2e.test.ts has the rest).
 */
import { describe, expect, it } from "vitest";
import { anomalyReasons } from "../../jobs/src/anomaly";
import { parseManifest } from "../../jobs/src/manifest";
import { manifestFor } from "../helpers/manifests";

describe("the anomaly baseline across the upgrade to counts from the dump stream", () => {
    const t = { sizeDropPercent: 50, rowsDropPercent: 50, minRows: 1000 };
    // An inheritance parent (the pre-partitioning way: events, with one child per month) holds no
    // rows of its own. The last backup before the upgrade counted it with count(*), children
    // included; the first one after counts what pg_dump's COPY of it wrote: its own rows.
    const tables = (parent: number) => [
        { schema: "public", name: "events", rows: parent },
        { schema: "public", name: "events_2026_05", rows: 6000 },
        { schema: "public", name: "events_2026_06", rows: 4000 },
    ];
    const v1 = parseManifest(JSON.stringify({
        kind: "kx-backup/postgres", manifestVersion: 1, database: "ce", key: "ce/ce-20260601-000000.dump", format: "custom", container: "pg_dump",
        options: { schemaOnly: false, dataOnly: false, tables: [], jobs: 1 }, size: 1000, sha256: "a".repeat(64),
        tables: { "public.events": 10000, "public.events_2026_05": 6000, "public.events_2026_06": 4000 },
    }), "v1");
    const snapshot = manifestFor("ce/ce-20260601-000000-aaaaaa.dump", "x", { size: 1000, tables: tables(10000), counts: { method: "snapshot-query" } });
    const stream = manifestFor("ce/ce-20260601-060000-bbbbbb.dump", "x", { size: 1000, tables: tables(0), counts: { method: "dump-stream" } });

    it("is not flagged when only the way of counting changed (v1 and v2 snapshot-query baselines)", () => {
        expect(v1.counts.method).toBe("snapshot-query");
        expect(anomalyReasons(stream, v1, t)).toEqual([]);
        expect(anomalyReasons(stream, snapshot, t)).toEqual([]);
    });

    it("still flags a table that is gone, and a size collapse, across the change", () => {
        const gone = { ...stream, tables: stream.tables.filter((x) => x.name !== "events_2026_05") };
        expect(anomalyReasons(gone, snapshot, t)).toEqual(["public.events_2026_05: table gone (had 6000 rows)"]);
        expect(anomalyReasons({ ...stream, size: 100 }, snapshot, t)).toEqual(["size 1000 B → 100 B (-90 %)"]);
    });

    it("compares rows again once both backups count from the dump stream", () => {
        const next = { ...stream, tables: tables(0).map((x) => (x.name === "events_2026_05" ? { ...x, rows: 10 } : x)) };
        expect(anomalyReasons(next, stream, t)).toEqual(["public.events_2026_05: 6000 → 10 rows (-100 %)"]);
    });
});
