/**
 * Each copy's RTO, attacked a third time (the r-copy3 review of 8684cc0): a copy's times ordered
 * by the backup's name-time (never one named after it was restored), the rotation over carried
 * times (only those newestByCopy would take), the stale window (only copies records timed), and
 * an anomalous backup's restore, which is no copy's RTO.
 */
import { promises as fs } from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { restoreHistory, RestoreRecord, rotationTarget } from "../../jobs/src/restore/copies";
import { carriedTimes, lastRestoredAt } from "../../jobs/src/restoreTimes";
import { assessStatus, VerifyRecord } from "../../jobs/src/status";
import { LocalTarget } from "../../jobs/src/targets";
import { ago, fullDaysAgo, MIN, NOW, seedVerified, timing, view } from "../helpers/statusFixtures";

const full = fullDaysAgo;
const seed = seedVerified;

describe("ordering by the backup's name-time", () => {
    // A backup dated a year ahead (a node's clock was wrong once). `latest` skips it and says
    // "name it with --backup to use it": an operator does, and verify restores it from S3 in 2 min.
    const ahead = "ce/ce-20270701-000000-bbbbbb.dump";

    it("a clock-ahead backup's time, once carried, is never replaced by S3's later real measurements", () => {
        const pinned = { key: ahead, target: "s3", finishedAt: ago(20), restoreDurationMs: MIN, restoreEndToEndMs: 2 * MIN };
        const carried = carriedTimes([pinned], "ce", ["local", "s3"], new Date(ago(20)));
        // The next records carry it; tonight's run restores today's full backup from S3: 45 min.
        const b = full(1);
        const history: RestoreRecord[] = [{ ...timing(b.key, 10, 3), target: "local", restoreByCopy: carried } as RestoreRecord];
        const tonight = { ...timing(b.key, 0.1, 45), target: "s3" };
        // Else S3 would stay the 2-min restore of the clock-ahead backup until mid-2027, its alert resolved.
        expect(carriedTimes([...history, tonight], "ce", ["local", "s3"], NOW).s3).toMatchObject({ key: b.key, restoreEndToEndMs: 45 * MIN });
    });

    it("status: a carried key dated in the future does not outrank a real, newer restore from the same copy", () => {
        // status skips records of backups dated ahead (fromTheFuture), but not the keys records carry.
        const b = full(1);
        const older = full(8);
        const local: VerifyRecord = { ...timing(older.key, 7, 3), target: "local", restoreByCopy: { s3: { key: ahead, finishedAt: ago(9), restoreDurationMs: MIN, restoreEndToEndMs: 2 * MIN } } };
        const s3: VerifyRecord = { ...timing(b.key, 0.5, 45), target: "s3" };
        const views = [view("local", [b, older], [[older.key, local]]), view("s3", [b, older], [[b.key, s3]])];
        const st = assessStatus("ce", views, { rpoHours: 48, rtoMinutes: 30, verifyMaxAgeDays: 7 }, NOW);
        // Else S3 would be the 9-day-old 2-min time (stale), the 45-min one never judged for S3, and
        // "run kx-backup verify --from s3" could not clear it.
        expect(st.restoreByCopy.s3).toMatchObject({ key: b.key, overRto: true });
    });
});

describe("whose restore a copy's time is: an anomalous full backup", () => {
    it("verify does not carry the time of a backup the anomaly guard flagged as much smaller (status ignores its record)", async () => {
        const root = await fs.mkdtemp(path.join(os.tmpdir(), "kx-review3-"));
        await seed(root, "ce/ce-20260601-000000-aaaaaa.dump", { target: "s3", finishedAt: "2026-06-01T03:00:00.000Z", restoreDurationMs: 20 * MIN, restoreEndToEndMs: 45 * MIN });
        // A truncated dump (10% of the size): restorable, verify tests it (allowAnomalous), S3 in 40 s.
        await seed(root, "ce/ce-20260602-000000-aaaaaa.dump", { target: "s3", finishedAt: "2026-06-02T03:00:00.000Z", restoreDurationMs: 20_000, restoreEndToEndMs: 40_000 },
            { anomaly: { reasons: ["size 10% of the previous"], comparedWith: "ce/ce-20260601-000000-aaaaaa.dump" } });
        const history = await restoreHistory([new LocalTarget(root)], "ce", undefined);
        expect(carriedTimes(history, "ce", ["local", "s3"], NOW).s3).toMatchObject({ restoreEndToEndMs: 45 * MIN });
    });
});

describe("the rotation over carried times", () => {
    it("a carried entry newestByCopy rejects (not this database's backup) does not count as the copy restored", () => {
        // Unsigned deployment: a .verify.json beside a real backup carries azure at its own finishedAt.
        const s3: RestoreRecord = { key: "ce/ce-20260601-000000-aaaaaa.dump", target: "s3", finishedAt: ago(2), restoreEndToEndMs: MIN };
        const local: RestoreRecord = { key: "ce/ce-20260602-000000-aaaaaa.dump", target: "local", finishedAt: ago(1), restoreEndToEndMs: MIN,
            restoreByCopy: { azure: { key: "not a backup", finishedAt: ago(1) } } };
        expect(carriedTimes([s3, local], "ce", ["local", "s3", "azure"], NOW).azure).toBeUndefined();
        // Azure was never timed (status: untimed), yet the rotation restores S3 again.
        expect(lastRestoredAt([s3, local], "ce").has("azure")).toBe(false);
        expect(rotationTarget(["local", "s3", "azure"], [s3, local], "ce")).toBe("azure");
    });
});

describe("the rotation-sized stale window", () => {
    const o = { rpoHours: 48, rtoMinutes: 30, verifyMaxAgeDays: 7 };

    it("a single-copy deployment: a record's `copies` does not stretch the stale window to 4 rounds", () => {
        const b = full(1);
        const old = full(21);
        // Local-only; the newest record (unsigned: anyone can write it) lists three copies it "checked".
        const rec = { ...timing(b.key, 0.5, 3), target: "elsewhere",
            copies: [{ target: "local" }, { target: "s3" }, { target: "azure" }], restoreByCopy: { local: timing(old.key, 20, 3) } } as VerifyRecord;
        const st = assessStatus("ce", [view("local", [b, old], [[b.key, rec]])], o, NOW);
        // One copy + a failed run: 14 d; counting what the record lists would make it 28 d.
        expect(st.restoreByCopy.local).toMatchObject({ key: old.key, ageDays: 20 });
        // Control: without the claimed copies, the same time is stale (7 d x (1 + 1) = 14 d).
        const { copies: _, ...honest } = rec as VerifyRecord & { copies?: unknown };
        expect(assessStatus("ce", [view("local", [b, old], [[b.key, honest as VerifyRecord]])], o, NOW).restoreByCopy.local?.stale).toBe(true);
        expect(st.restoreByCopy.local?.stale).toBe(true);
    });

    it("a record dated in another format (RFC 2822) is ordered by its time, not its text", () => {
        const b = fullDaysAgo(1);
        const c = fullDaysAgo(3);
        const d = fullDaysAgo(16);
        // As text "Sat, 27 Jun …" sorts after every ISO date; by time it is 2.5 days old.
        const older = { key: c.key, target: "local", finishedAt: new Date(ago(2.5)).toUTCString(), restoreEndToEndMs: MIN } as VerifyRecord;
        const newer = { ...timing(b.key, 0.5, 1), target: "s3", restoreByCopy: { local: timing(d.key, 15, 1) } } as VerifyRecord;
        const st = assessStatus("ce", [view("local", [b, c, d], [[b.key, newer], [c.key, older]]), view("s3", [b, c, d])], o, NOW);
        expect(st.newestVerified?.key).toBe(b.key);
        expect(st.restoreByCopy.local).toMatchObject({ key: c.key, ageDays: 2.5 });
        expect(st.restoreByCopy.s3).toMatchObject({ key: b.key });
    });
});
