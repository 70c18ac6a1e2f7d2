import { describe, expect, it } from "vitest";
import { anomalyReasons } from "../../jobs/src/anomaly";
import { assessStatus, renderStatus, VerifyRecord } from "../../jobs/src/status";
import { manifestFor } from "../helpers/manifests";
import { full, HOUR, NOW, OBJ, view } from "../helpers/statusFixtures";

const verifiedAt = (hoursAgo: number, minutes = 2): VerifyRecord => ({ finishedAt: new Date(NOW.getTime() - hoursAgo * HOUR).toISOString(), restoreDurationMs: minutes * 60_000 });

describe("status", () => {
    it("is ok inside the RPO with a recent verified restore inside the RTO, on agreeing targets", () => {
        const b = full(2, { verified: true });
        const s = assessStatus("ce", [view("local", [b], [[b.key, verifiedAt(1)]]), view("s3", [b])], OBJ, NOW);
        expect(s.problems).toEqual([]);
        expect(s.ok).toBe(true);
        expect(s.newestFull?.ageHours).toBe(2);
        expect(s.newestVerified).toMatchObject({ key: b.key, target: "local", restoreMinutes: 2 });
        expect(s.trend).toEqual([{ key: b.key, takenAt: b.takenAt.toISOString(), size: 100, rows: 1000 }]);
    });

    it("names the database and the RPO when the newest full backup is too old", () => {
        const b = full(7, { verified: true });
        const s = assessStatus("ce", [view("local", [b], [[b.key, verifiedAt(6)]])], OBJ, NOW);
        expect(s.problems).toEqual([expect.stringMatching(/^ce: RPO: newest full backup ce\/.* is 7\.0h old \(RPO 6 h\)$/)]);
    });

    it("no backup at all, or no verified one, are problems", () => {
        expect(assessStatus("ce", [view("local", [])], OBJ, NOW).problems).toEqual([
            "ce: RPO: no complete full backup on any target (RPO 6 h)",
            "ce: verify age: no backup has passed a restore test (allowed age 7 d)",
        ]);
    });

    it("verify age and RTO are checked against the newest verified good backup", () => {
        const b = full(1, { verified: true });
        const old = assessStatus("ce", [view("local", [b], [[b.key, verifiedAt(24 * 8)]])], OBJ, NOW);
        expect(old.problems).toEqual([expect.stringMatching(/^ce: verify age: the last restore test .* was 8 d ago \(allowed 7 d\)$/)]);
        const slow = assessStatus("ce", [view("local", [b], [[b.key, verifiedAt(1, 45)]])], OBJ, NOW);
        expect(slow.problems).toEqual([expect.stringMatching(/^ce: RTO: the last restore test \(ce\/.*\.dump, 0 d ago\) took 45m0s in pg_restore alone \(a record from before the whole restore was timed\) \(RTO 30 min\)$/)]);
    });

    it("the RTO is judged on the whole restore (fetch, checks, pg_restore, comparison), not pg_restore's part", () => {
        const b = full(1, { verified: true });
        // pg_restore took 20 min, well inside 30; fetching the copy and comparing took it to 34.
        const record = { ...verifiedAt(1, 20), restoreEndToEndMs: 34 * 60_000 };
        const s = assessStatus("ce", [view("local", [b], [[b.key, record]])], OBJ, NOW);
        expect(s.newestVerified).toMatchObject({ restoreMinutes: 34, restoreEndToEnd: true });
        expect(s.problems).toEqual([expect.stringMatching(/^ce: RTO: the last restore test \(.*\) took 34m0s end to end \(fetch, checks, pg_restore, comparison\) \(RTO 30 min\)$/)]);
        const inside = assessStatus("ce", [view("local", [b], [[b.key, { ...verifiedAt(1, 20), restoreEndToEndMs: 29 * 60_000 }]])], OBJ, NOW);
        expect(inside.problems).toEqual([]);
    });

    it("a record without a usable restore time is a problem: the RTO cannot be judged, never silently met", () => {
        const b = full(1, { verified: true });
        for (const record of [
            { finishedAt: verifiedAt(1).finishedAt },
            { finishedAt: verifiedAt(1).finishedAt, restoreDurationMs: "2700000" as unknown as number },
            { ...verifiedAt(1, 20), restoreEndToEndMs: -1 },
        ]) {
            const s = assessStatus("ce", [view("local", [b], [[b.key, record]])], OBJ, NOW);
            expect(s.ok).toBe(false);
            expect(s.problems).toEqual([expect.stringMatching(/^ce: RTO: the record of the last restore test \(ce\/.*\.dump\) holds no usable restore time \(.+\): the RTO cannot be judged$/)]);
        }
    });

    it("says which copy's restore was timed: verify rotates, and the record found on one target may be another's", () => {
        const b = full(1, { verified: true });
        const record = { ...verifiedAt(1, 20), restoreEndToEndMs: 34 * 60_000, target: "local" };
        const s = assessStatus("ce", [view("s3", [b], [[b.key, record]]), view("local", [b])], OBJ, NOW);
        expect(s.newestVerified).toMatchObject({ target: "s3", restoredFrom: "local" });
        expect(renderStatus([s])).toMatch(/local 34m0s, s3 - \/ 30m/);
        expect(s.problems).toEqual([expect.stringMatching(/^ce: RTO: the last restore test of the copy on local \(ce\/.*, 0 d ago\) took 34m0s end to end \(fetch, checks, pg_restore, comparison\) \(RTO 30 min\)$/)]);
    });

    it("judges every copy's RTO on its own newest time: a fast local restore last night says nothing of S3", () => {
        // verify rotates: the newest record (2 h ago) restored the local copy in 4 min; the S3
        // copy's newest restore (two days ago, its own record) took 40 min.
        const newer = full(3, { verified: true });
        const older = full(49, { verified: true });
        const local = { ...verifiedAt(2, 3), restoreEndToEndMs: 4 * 60_000, target: "local" };
        const s3 = { ...verifiedAt(48, 30), restoreEndToEndMs: 40 * 60_000, target: "s3" };
        const both = [view("local", [newer, older], [[newer.key, local], [older.key, s3]]), view("s3", [newer, older], [[newer.key, local], [older.key, s3]])];
        const st = assessStatus("ce", both, OBJ, NOW);
        expect(st.newestVerified).toMatchObject({ key: newer.key, restoredFrom: "local", restoreMinutes: 4, overRto: false });
        expect(st.restoreByCopy).toMatchObject({ local: { key: newer.key, restoreMinutes: 4, overRto: false }, s3: { key: older.key, restoreMinutes: 40, overRto: true, ageDays: 2 } });
        expect(st.ok).toBe(false);
        expect(st.problems).toEqual([expect.stringMatching(/^ce: RTO: the last restore test of the copy on s3 \(ce\/.*, 2 d ago\) took 40m0s end to end .*\(RTO 30 min\)$/)]);
        expect(renderStatus([st])).toMatch(/local 4m0s, s3 40m0s \/ 30m/);
        // The older backup was pruned: its record went with it, but the newest record carries S3's time.
        const carried = { ...local, restoreByCopy: { s3: { key: older.key, finishedAt: s3.finishedAt, restoreDurationMs: s3.restoreDurationMs, restoreEndToEndMs: s3.restoreEndToEndMs } } };
        const pruned = assessStatus("ce", [view("s3", [newer], [[newer.key, carried]])], OBJ, NOW);
        expect(pruned.restoreByCopy.s3).toMatchObject({ key: older.key, restoreMinutes: 40, overRto: true });
        expect(pruned.problems).toEqual([expect.stringMatching(/copy on s3 .* took 40m0s/)]);
        // ... and the PVC is gone: the local copy's time is not judged (nor shown) any more.
        expect(pruned.restoreByCopy.local).toBeUndefined();
        // S3 timed again, inside the RTO: nothing is over any more.
        const again = full(1, { verified: true });
        const fixed = assessStatus("ce", [view("s3", [again, newer], [[again.key, { ...verifiedAt(0.5, 10), restoreEndToEndMs: 12 * 60_000, target: "s3" }], [newer.key, carried]]), view("local", [again, newer])], OBJ, NOW);
        expect(fixed.restoreByCopy).toMatchObject({ local: { restoreMinutes: 4 }, s3: { key: again.key, restoreMinutes: 12, overRto: false } });
        expect(fixed.problems).toEqual([]);
    });

    it("a copy's unusable newest time is a problem of that copy, not hidden behind another copy's good one", () => {
        const newer = full(3, { verified: true });
        const older = full(49, { verified: true });
        const records: [string, VerifyRecord][] = [
            [newer.key, { ...verifiedAt(2, 3), restoreEndToEndMs: 4 * 60_000, target: "local" }],
            [older.key, { ...verifiedAt(48, 30), restoreEndToEndMs: "40 min" as unknown as number, target: "azure" }],
        ];
        const st = assessStatus("ce", [view("local", [newer, older], records), view("azure", [newer, older], records)], OBJ, NOW);
        expect(st.problems).toEqual([expect.stringMatching(/^ce: RTO: the record of the last restore test of the copy on azure \(ce\/.*\) holds no usable restore time \(restoreEndToEndMs is "40 min"\): the RTO cannot be judged$/)]);
    });

    it("with only copies left that were never timed (the PVC is gone, S3 not yet timed), the RTO is a problem, not a pass", () => {
        const b = full(3, { verified: true });
        const record = { ...verifiedAt(2, 3), restoreEndToEndMs: 4 * 60_000, target: "local" };
        const st = assessStatus("ce", [view("s3", [b], [[b.key, record]]), view("azure", [b], [[b.key, record]])], OBJ, NOW);
        expect(st.restoreByCopy).toEqual({});
        expect(st.problems).toEqual(["ce: RTO: no restore from s3 or azure has been timed (the last restore test restored the copy on local, which is not configured here): run kx-backup verify --from s3"]);
        // One of them timed is enough to judge: the other is timed on its turn.
        const s3 = { ...verifiedAt(30, 9), restoreEndToEndMs: 9 * 60_000, target: "s3" };
        const older = full(31, { verified: true });
        const some = assessStatus("ce", [view("s3", [b, older], [[b.key, record], [older.key, s3]]), view("azure", [b])], OBJ, NOW);
        expect(some.problems).toEqual([]);
        expect(renderStatus([some])).toMatch(/s3 9m0s, azure - \/ 30m/);
    });

    it("an anomalous newest backup is a problem, and an anomalous verified one does not count as verified", () => {
        const good = full(3, { verified: true });
        const bad = full(1, { anomalous: true, verified: true });
        const s = assessStatus("ce", [view("local", [bad, good], [[good.key, verifiedAt(2)], [bad.key, verifiedAt(0.5)]])], OBJ, NOW);
        expect(s.problems).toEqual([expect.stringMatching(/^ce: anomaly: newest full backup .* is anomalous: public\.trades: 10000 → 1000 rows/)]);
        expect(s.newestVerified?.key).toBe(good.key);
        expect(renderStatus([s])).toMatch(/ANOMALOUS/);
    });

    it("targets that do not hold the same newest backup disagree; an unreadable target is named", () => {
        const a = full(1, { verified: true });
        const b = full(2);
        const s = assessStatus("ce", [view("local", [a, b], [[a.key, verifiedAt(0.5)]]), view("s3", [b]), { target: "azure", error: "ECONNREFUSED", verifies: new Map() }], OBJ, NOW);
        expect(s.targetsAgree).toBe(false);
        expect(s.problems).toEqual([
            "ce: target azure unreadable: ECONNREFUSED",
            expect.stringMatching(/^ce: targets disagree: newest full backup on local .*aaaaaa\.dump, on s3 .*$/),
        ]);
    });
});

describe("anomaly guard", () => {
    const t = { sizeDropPercent: 50, rowsDropPercent: 50, minRows: 1000 };
    const m = (size: number, tables: [string, number][], over = {}) =>
        manifestFor("ce/ce-20260101-000000-aaaaaa.dump", "x", { size, tables: tables.map(([name, rows]) => ({ schema: "public", name, rows })), ...over });

    it("flags a table that lost most of its rows, a table that disappeared, and a size collapse", () => {
        expect(anomalyReasons(m(1000, [["trades", 900], ["users", 5000]]), m(1000, [["trades", 10000], ["users", 5000]]), t)).toEqual(["public.trades: 10000 → 900 rows (-91 %)"]);
        expect(anomalyReasons(m(1000, [["users", 5000]]), m(1000, [["trades", 3], ["users", 5000]]), t)).toEqual(["public.trades: table gone (had 3 rows)"]);
        expect(anomalyReasons(m(400, [["users", 5000]]), m(1000, [["users", 5000]]), t)).toEqual(["size 1000 B → 400 B (-60 %)"]);
    });

    it("ignores small tables, small drops, growth, other formats, partial backups and backups without counts", () => {
        expect(anomalyReasons(m(1000, [["tiny", 1]]), m(1000, [["tiny", 999]]), t)).toEqual([]);
        expect(anomalyReasons(m(600, [["trades", 5100]]), m(1000, [["trades", 10000]]), t)).toEqual([]);
        expect(anomalyReasons(m(5000, [["trades", 20000]]), m(1000, [["trades", 10000]]), t)).toEqual([]);
        expect(anomalyReasons(m(100, []), m(1000, [], { format: "directory" }), t)).toEqual([]);
        expect(anomalyReasons(m(100, [], { scope: "schema-only" }), m(1000, []), t)).toEqual([]);
        expect(anomalyReasons(m(1000, [["trades", 1]]), m(1000, [["trades", 10000]], { counts: { method: "none" } }), t)).toEqual([]);
        expect(anomalyReasons(m(1000, [["trades", 1]]), undefined, t)).toEqual([]);
    });

    it("thresholds are the configured ones", () => {
        expect(anomalyReasons(m(1000, [["trades", 8000]]), m(1000, [["trades", 10000]]), { ...t, rowsDropPercent: 10 })).toHaveLength(1);
        expect(anomalyReasons(m(1000, [["trades", 500]]), m(1000, [["trades", 600]]), { ...t, minRows: 100 })).toEqual([]);
    });
});
