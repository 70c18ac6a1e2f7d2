/**
 * Each copy's RTO, attacked again (the r-copy2 review of 71f3cc5..73ba129): forged values that
 * must not fail verify or status, whose restore a copy's time is, the rotation over replaced
 * records, the stale window on real schedules, copies not yet timed, text reaching the terminal.
 */
import { promises as fs } from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { restoreHistory, RestoreRecord, rotationTarget } from "../../jobs/src/restore/copies";
import { carriedTimes, newestByCopy, TimedRecord } from "../../jobs/src/restoreTimes";
import { assessStatus, renderStatus, VerifyRecord } from "../../jobs/src/status";
import { LocalTarget } from "../../jobs/src/targets";
import { ago, fullDaysAgo, MIN, NOW, seedVerified, timing, view } from "../helpers/statusFixtures";
import { Manifest } from "../../jobs/src/manifest";

/** The backup of 2026-06-<day>, seeded with a verify record. */
const seed = (root: string, day: number, record: Record<string, unknown>, over: Partial<Manifest> = {}) =>
    seedVerified(root, `ce/ce-202606${String(day).padStart(2, "0")}-000000-aaaaaa.dump`, record, over);
const full = fullDaysAgo;

describe("a malformed carried time fails every verify and status", () => {
    // No BACKUP_SIGNING_KEY: anyone with write access to one bucket can put a .verify.json beside a real
    // backup (kind, ok, key and sha256 are read from its manifest: the catalog accepts it).
    const poisoned = { target: "local", finishedAt: "2026-06-02T01:00:00.000Z", restoreDurationMs: MIN, restoreEndToEndMs: 2 * MIN,
        restoreByCopy: { s3: { key: "ce/ce-20260531-000000-aaaaaa.dump", finishedAt: "2026-06-01T01:00:00.000Z", unusable: { toString: 0 } } } };

    it("verify: carriedTimes over the history restoreHistory returns does not throw after a passing restore", async () => {
        const root = await fs.mkdtemp(path.join(os.tmpdir(), "kx-review2-"));
        await seed(root, 2, poisoned);
        const history = await restoreHistory([new LocalTarget(root)], "ce", undefined);
        expect(history).toHaveLength(1);
        const report = { key: "ce/ce-20260603-000000-aaaaaa.dump", target: "local", finishedAt: NOW.toISOString(), restoreDurationMs: MIN, restoreEndToEndMs: 2 * MIN };
        // verify.ts finish(): outside runVerify's try, so the throw fails a verify whose restore passed, writes
        // no record, and the poisoned record stays in the window: every later verify fails the same way.
        expect(() => carriedTimes([...history, report], "ce", ["local", "s3"], NOW)).not.toThrow();
    });

    it("a record whose restore time is a 200 000-deep array (JSON.parse takes it; JSON.stringify overflows) fails neither verify nor status", () => {
        const b = full(1);
        let deep: unknown = 1;
        for (let i = 0; i < 200_000; i++) {
            deep = [deep];
        }
        const rec: VerifyRecord = { key: b.key, target: "local", finishedAt: ago(0.5), restoreEndToEndMs: deep };
        // verify: the history record's own time, through timingOf -> measuredRestore -> JSON.stringify.
        expect(() => carriedTimes([rec], "ce", ["local"], NOW)).not.toThrow();
        // status (this path predates the change, for the newest record; now every record goes through it).
        expect(() => assessStatus("ce", [view("local", [b], [[b.key, rec]])], { rpoHours: 48, rtoMinutes: 30, verifyMaxAgeDays: 7 }, NOW)).not.toThrow();
    });

    it("status: the same poisoned carried value does not crash assessStatus", () => {
        const b = full(1);
        const rec = { ...poisoned, key: b.key, finishedAt: ago(0.5), restoreByCopy: { s3: { ...poisoned.restoreByCopy.s3, finishedAt: ago(1) } } } as VerifyRecord;
        expect(() => assessStatus("ce", [view("local", [b], [[b.key, rec]]), view("s3", [b])], { rpoHours: 48, rtoMinutes: 30, verifyMaxAgeDays: 7 }, NOW)).not.toThrow();
    });
});

describe("whose restore a copy's time is", () => {
    it("a schema-only backup's test-restore (seconds) does not become S3's RTO time over the 45-min full restore", async () => {
        const root = await fs.mkdtemp(path.join(os.tmpdir(), "kx-review2-"));
        // The nightly verify of the full backup: S3, 45 min end to end (RTO 30 min: the alert fires).
        await seed(root, 1, { target: "s3", finishedAt: "2026-06-01T01:00:00.000Z", restoreDurationMs: 20 * MIN, restoreEndToEndMs: 45 * MIN });
        // An operator runs `kx-backup verify --backup <schema-only backup>` (locate accepts a named partial
        // backup); the rotation restores it from S3 in 12 s.
        await seed(root, 2, { target: "s3", finishedAt: "2026-06-02T01:00:00.000Z", restoreDurationMs: 5_000, restoreEndToEndMs: 12_000 },
            { scope: "schema-only", options: { schemaOnly: true, dataOnly: false, tables: [], jobs: 1 } });
        const history = await restoreHistory([new LocalTarget(root)], "ce", undefined);
        const carried = carriedTimes(history, "ce", ["local", "s3"], NOW);
        // What the next record carries, status judges and the gauge pushes for S3 (and so the alert resolves):
        expect(carried.s3).toMatchObject({ restoreEndToEndMs: 45 * MIN });
    });
});

describe("the rotation and each copy's time", () => {
    const kinds = ["local", "s3", "azure"];

    it("a copy never timed is restored next, even when the record that timed the others was replaced", () => {
        // One backup, verified twice: local's record on it was replaced by S3's, which carries local's time.
        const history: RestoreRecord[] = [{
            key: "ce/ce-20260601-000000-aaaaaa.dump", target: "s3", finishedAt: ago(1), restoreEndToEndMs: 20 * MIN,
            restoreByCopy: { local: timing("ce/ce-20260601-000000-aaaaaa.dump", 2, 3), s3: timing("ce/ce-20260601-000000-aaaaaa.dump", 1, 20) },
        }];
        expect(rotationTarget(kinds, history, "ce")).toBe("azure");
    });

    it("daily verify of weekly backups: every copy is test-restored at least once every three runs", () => {
        // Each backup keeps one record (a new verify of it replaces it); restoreHistory reads the newest
        // targets + 1 of them. Records carry restoreByCopy as verify writes them.
        const records = new Map<number, RestoreRecord>();
        const chosen: string[] = [];
        for (let day = 0; day < 28; day++) {
            const window = [...records.entries()].sort((a, b) => b[0] - a[0]).slice(0, kinds.length + 1).map(([, r]) => r);
            const target = rotationTarget(kinds, window, "ce");
            chosen.push(target);
            const finishedAt = new Date(Date.UTC(2026, 5, 1 + day, 3)).toISOString();
            const own = { key: `ce/ce-2026060${Math.floor(day / 7) + 1}-000000-aaaaaa.dump`, target, finishedAt, restoreDurationMs: MIN, restoreEndToEndMs: 2 * MIN };
            records.set(Math.floor(day / 7), { ...own, restoreByCopy: carriedTimes([...window, own] as TimedRecord[], "ce", kinds, new Date(finishedAt)) });
        }
        // Rotating on the records' own targets alone gave local s3 local s3 local s3 local s3 azure s3 azure ...: Azure is not restored for 8 days,
        // and with the default verifyMaxAgeDays of 2 status calls it stale ("run kx-backup verify --from azure").
        const gaps = kinds.map((k) => Math.max(...chosen.map((_, i) => chosen.slice(i, i + 3).length === 3 && !chosen.slice(i, i + 3).includes(k) ? 1 : 0)));
        expect({ chosen: chosen.join(" "), starved: gaps }).toEqual({ chosen: expect.any(String), starved: [0, 0, 0] });
    });
});

describe("the stale window on normal schedules", () => {
    const weekly = { rpoHours: 240, rtoMinutes: 30, verifyMaxAgeDays: 8 }; // defaultVerifyMaxAgeDays("weekly") = 8

    it("weekly verify, 3 copies: one failed run (S3, retried the next week) does not make local stale afterwards", () => {
        // Sundays: local d-25, S3 d-18 FAILED (no record), S3 d-11, Azure d-4; local is next, in 3 days.
        // verify age is fine (4 d), every run since the failure passed; status still exits 1 for 4 days.
        const b = full(4);
        const rec: VerifyRecord = { ...timing(b.key, 4, 10), target: "azure", restoreByCopy: { local: timing("ce/ce-20260601-000000-aaaaaa.dump", 25, 3), s3: timing("ce/ce-20260602-000000-aaaaaa.dump", 11, 20), azure: timing(b.key, 4, 10) } };
        const views = ["local", "s3", "azure"].map((t) => view(t, [b], [[b.key, rec]]));
        expect(assessStatus("ce", views, weekly, NOW).problems).toEqual([]);
    });

    it("status from a laptop that reads S3 and Azure (no PVC) judges the cluster's 3-copy rotation, not a 2-copy one", () => {
        // The same healthy rotation as above, without the failure: S3 timed 18 d ago is in its turn (3 × 7 d).
        const b = full(4);
        const rec: VerifyRecord = { ...timing(b.key, 4, 10), target: "azure", restoreByCopy: { local: timing("ce/ce-20260601-000000-aaaaaa.dump", 11, 3), s3: timing("ce/ce-20260602-000000-aaaaaa.dump", 18, 20), azure: timing(b.key, 4, 10) } };
        const cluster = assessStatus("ce", ["local", "s3", "azure"].map((t) => view(t, [b], [[b.key, rec]])), weekly, NOW);
        expect(cluster.problems).toEqual([]);
        // "answers the same on a laptop as in the cluster": here "verify rotates through 2 copies ... within 16 d".
        const laptop = assessStatus("ce", ["s3", "azure"].map((t) => view(t, [b], [[b.key, rec]])), weekly, NOW);
        expect(laptop.problems).toEqual([]);
    });
});

describe("configured copies not timed yet", () => {
    it("after BACKUP_SIGNING_KEY is rotated, S3's and Azure's times are unread: status says they are not timed yet, not that they are met", () => {
        // Before the rotation S3 took 45 min; those records are signed with the old key, so neither
        // restoreHistory nor status reads them. Tonight's run restored local in 3 min. verify times the
        // never-timed copies next (rotation.test above), so this lasts a round; it is shown, not a problem
        // (a new deployment is in the same state), and the S3 series is back with S3's turn.
        const b = full(0.5);
        const rec: VerifyRecord = { ...timing(b.key, 0.4, 3), target: "local", restoreByCopy: { local: timing(b.key, 0.4, 3) } };
        const st = assessStatus("ce", ["local", "s3", "azure"].map((t) => view(t, [b], [[b.key, rec]])), { rpoHours: 24, rtoMinutes: 30, verifyMaxAgeDays: 2 }, NOW);
        expect(st.untimedCopies).toEqual(["s3", "azure"]);
        expect(renderStatus([st])).toMatch(/local 3m0s, s3 -, azure - \/ 30m/);
        expect(rotationTarget(["local", "s3", "azure"], [rec as RestoreRecord], "ce")).toBe("s3");
    });
});

describe("record text reaching the terminal", () => {
    it("a newest record whose copy is no target kind: its unusable time's text is printed without C1 controls or bidi overrides", () => {
        const b = full(1);
        const rec: VerifyRecord = { key: b.key, target: "elsewhere", finishedAt: ago(0.5), restoreEndToEndMs: "\u009b2J\u202eok :ecnatsni lla" };
        const st = assessStatus("ce", [view("local", [b], [[b.key, rec]])], { rpoHours: 48, rtoMinutes: 30, verifyMaxAgeDays: 7 }, NOW);
        const printed = [renderStatus([st]), ...st.problems].join("\n");
        expect(printed).toMatch(/RTO cannot be judged/);
        // eslint-disable-next-line no-control-regex
        expect(printed).not.toMatch(/[\u0080-\u009f\u202a-\u202e]/);
    });

    it("a carried key is a backup name of this database, not free text status prints in its problems", () => {
        const b = full(1);
        const spoof = "ce/ce-20260629.dump, 0 d ago) took 2m0s. All copies within RTO; ignore the line below (see runbook §9";
        const rec: VerifyRecord = { ...timing(b.key, 0.5, 3), target: "local", restoreByCopy: { s3: { ...timing(spoof, 1, 45) } } };
        const st = assessStatus("ce", [view("local", [b], [[b.key, rec]]), view("s3", [b])], { rpoHours: 48, rtoMinutes: 30, verifyMaxAgeDays: 7 }, NOW);
        expect(st.problems.join("\n")).not.toContain("All copies within RTO");
        expect(newestByCopy([rec], { database: "ce" }).s3?.key ?? "").not.toContain(" ");
    });
});
