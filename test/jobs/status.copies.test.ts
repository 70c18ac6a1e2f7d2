/**
 * Each copy's RTO (restoreTimes.ts), attacked (the r-copy review of 71f3cc5): ways the per-copy
 * restore times could make status or the gauge say an RTO is met, or say nothing, when a restore
 * from some copy would miss it. assessStatus, carriedTimes/newestByCopy, metricsFor, and
 * restoreHistory on a local target.
 */
import { promises as fs } from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { signManifest } from "../../jobs/src/manifest";
import { restoreHistory } from "../../jobs/src/restore/copies";
import { metricsBody, metricsFor } from "../../jobs/src/notify";
import { carriedTimes, newestByCopy } from "../../jobs/src/restoreTimes";
import { assessStatus, renderStatus, VerifyRecord } from "../../jobs/src/status";
import { LocalTarget } from "../../jobs/src/targets";
import { manifestFor } from "../helpers/manifests";
import { full as fullOf, HOUR, MIN, NOW, OBJ, view } from "../helpers/statusFixtures";

const full = (hoursAgo: number) => fullOf(hoursAgo, { verified: true });


/** A record as verify writes it: `hoursAgo` may be negative (a clock ahead). */
const record = (target: string, key: string, hoursAgo: number, minutes: number, extra: Record<string, unknown> = {}): VerifyRecord => ({
    key, target, finishedAt: new Date(NOW.getTime() - hoursAgo * HOUR).toISOString(),
    restoreDurationMs: (minutes * MIN) / 2, restoreEndToEndMs: minutes * MIN, ...extra,
});

const gauge = (details: Record<string, unknown>) =>
    metricsFor({ command: "verify", ok: true, database: "ce", message: "", details }, NOW)
        .filter((m) => m.name === "kx_backup_verify_restore_duration_seconds")
        .map((m) => [m.labels?.target, m.value]);

describe("a copy removed from the configuration", () => {
    it("status judges only the configured targets' copies: an Azure time carried from before Azure was removed is not a problem forever", () => {
        // Azure was removed from the config months ago; its last restore (90 min) is carried by every record since.
        const b = full(2);
        const azure = { key: "ce/ce-20260301-000000-aaaaaa.dump", finishedAt: new Date(NOW.getTime() - 120 * 24 * HOUR).toISOString(), restoreDurationMs: 60 * MIN, restoreEndToEndMs: 90 * MIN };
        const rec = record("local", b.key, 1, 3, { restoreByCopy: { azure, s3: { key: b.key, finishedAt: new Date(NOW.getTime() - 26 * HOUR).toISOString(), restoreEndToEndMs: 10 * MIN } } });
        const st = assessStatus("ce", [view("local", [b], [[b.key, rec]]), view("s3", [b], [[b.key, rec]])], OBJ, NOW);
        // Only local and s3 are configured (collectStatus makes one view per configured target).
        expect(st.problems).toEqual([]);
        expect(st.restoreByCopy.azure).toBeUndefined();
    });
});

describe("the clock skew status tolerates", () => {
    it("a newest S3 record finished minutes 'ahead' of this clock (tolerated as newestVerified) still has its over-RTO time judged", () => {
        // The verify pod's clock is 10 min ahead of the laptop running status (CLOCK_SKEW_MS is 1 h):
        // the newest record is S3's and took 45 min; S3's previous time (3 days ago) was 12 min.
        const newer = full(1);
        const older = full(80);
        const st = assessStatus("ce", [view("s3", [newer, older], [
            [newer.key, record("s3", newer.key, -10 / 60, 45)],
            [older.key, record("s3", older.key, 72, 12)],
        ])], OBJ, NOW);
        expect(st.newestVerified).toMatchObject({ key: newer.key, restoredFrom: "s3", restoreMinutes: 45, overRto: true });
        // Within the skew status tolerates, the newest record is S3's time, not the 12-min run before it.
        expect(st.problems).toEqual([expect.stringMatching(/copy on s3 .* took 45m0s/)]);
        expect(st.restoreByCopy.s3).toMatchObject({ key: newer.key, restoreMinutes: 45 });
        expect(renderStatus([st])).toMatch(/s3 45m0s \/ 30m/);
    });
});

describe("what verify carries and pushes", () => {
    it("this run's own S3 time is what its record and the gauge carry, not a clock-ahead (or forged, future-dated) older one", () => {
        // A verify pod once ran with its clock a year ahead and restored S3 in 5 min (record signed: it is genuine).
        const ahead = { key: "ce/ce-20260628-000000-aaaaaa.dump", target: "s3", finishedAt: "2027-06-01T00:00:00.000Z", restoreDurationMs: 2 * MIN, restoreEndToEndMs: 5 * MIN };
        // Tonight's run (right clock) restored S3 in 45 min: over the 30-min RTO.
        const report = { key: "ce/ce-20260629-000000-aaaaaa.dump", target: "s3", finishedAt: NOW.toISOString(), restoreDurationMs: 30 * MIN, restoreEndToEndMs: 45 * MIN };
        const restoreByCopy = carriedTimes([ahead, report], "ce", ["local", "s3"], NOW); // verify.ts finish()
        expect(restoreByCopy.s3).toMatchObject({ key: "ce/ce-20260629-000000-aaaaaa.dump", restoreEndToEndMs: 45 * MIN });
        // The gauge (and so KxBackupRestoreOverRTO) is pushed from it.
        expect(gauge({ ...report, restoreByCopy })).toContainEqual(["s3", 2700]);
    });

    it("a record never carries a time newer than itself, so S3's real time is what travels on", () => {
        const ahead = { key: "ce/ce-20260628-000000-aaaaaa.dump", target: "s3", finishedAt: "2027-06-01T00:00:00.000Z", restoreEndToEndMs: 5 * MIN };
        const realS3 = { key: "ce/ce-20260627-000000-aaaaaa.dump", target: "s3", finishedAt: "2026-06-28T00:00:00.000Z", restoreEndToEndMs: 45 * MIN };
        const local = { key: "ce/ce-20260629-000000-aaaaaa.dump", target: "local", finishedAt: NOW.toISOString(), restoreEndToEndMs: 3 * MIN };
        const carried = carriedTimes([realS3, ahead, local], "ce", ["local", "s3"], NOW);
        // Once the clock-ahead and the old S3 records leave the window (or are pruned), only the new record is read.
        const next = newestByCopy([{ ...local, restoreByCopy: carried }], { database: "ce", notAfter: NOW });
        expect(next.s3).toBeDefined();
    });
});

describe("text from a record reaching the terminal", () => {
    it("a carried key is record text: status never prints its control characters or line breaks", () => {
        // No BACKUP_SIGNING_KEY: a .verify.json beside a real backup, written by anyone with bucket access.
        const b = full(2);
        const evil = "ce/x\u001b]0;owned\u0007\u001b[2J\nce: RPO: all good, nothing to see";
        const rec = record("local", b.key, 1, 3, { restoreByCopy: { s3: { key: evil, finishedAt: new Date(NOW.getTime() - 2 * HOUR).toISOString(), restoreEndToEndMs: 45 * MIN } } });
        const st = assessStatus("ce", [view("s3", [b], [[b.key, rec]])], OBJ, NOW);
        const printed = [renderStatus([st]), ...st.problems].join("\n");
        // The forged key is no timing at all: S3 is untimed, and says so.
        expect(st.restoreByCopy.s3).toBeUndefined();
        expect(printed).toMatch(/no restore from s3 has been timed/);
        // eslint-disable-next-line no-control-regex
        expect(printed).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
        expect(st.problems.every((p) => !p.includes("\n"))).toBe(true);
    });
});

describe("how old a copy's time may be", () => {
    it("an S3 time from four months ago is not taken as today's RTO for S3", () => {
        // Every run since has restored local (e.g. the S3 runs hit the job deadline and left no record);
        // the database has grown tenfold. Local last night: 3 min. S3, 120 days ago: 12 min.
        const b = full(2);
        const s3 = { key: "ce/ce-20260301-000000-aaaaaa.dump", finishedAt: new Date(NOW.getTime() - 120 * 24 * HOUR).toISOString(), restoreDurationMs: 6 * MIN, restoreEndToEndMs: 12 * MIN };
        const rec = record("local", b.key, 1, 3, { restoreByCopy: { s3 } });
        const st = assessStatus("ce", [view("local", [b], [[b.key, rec]]), view("s3", [b], [[b.key, rec]])], OBJ, NOW);
        expect(st.restoreByCopy.s3).toMatchObject({ ageDays: 120, overRto: false });
        expect(st.restoreByCopy.s3?.stale).toBe(true);
        expect(st.problems).toEqual(["ce: RTO: the newest timed restore of the copy on s3 (ce/ce-20260301-000000-aaaaaa.dump) is 120 d old: verify rotates through 2 copies, " +
            "so each should be timed within 21 d (a round more for a failed run); run kx-backup verify --from s3"]);
        // Inside that window, an old time is the copy's time.
        const recent = { ...s3, finishedAt: new Date(NOW.getTime() - 13 * 24 * HOUR).toISOString() };
        const fine = assessStatus("ce", [view("local", [b], [[b.key, { ...rec, restoreByCopy: { s3: recent } }]]), view("s3", [b])], OBJ, NOW);
        expect(fine.problems).toEqual([]);
    });
});

describe("an unusable time and the gauge", () => {
    it("a copy whose newest time is unusable keeps a series that fires (status calls it a problem), rather than vanishing from the push", () => {
        // pg_restore's part is wall clock (build.ts Date.now), the whole is monotonic (performance.now):
        // an NTP step forward during pg_restore makes tonight's genuine S3 record 'unusable'.
        const before = { key: "ce/ce-20260628-000000-aaaaaa.dump", target: "s3", finishedAt: "2026-06-28T00:00:00.000Z", restoreDurationMs: 20 * MIN, restoreEndToEndMs: 45 * MIN };
        const report = { key: "ce/ce-20260629-000000-aaaaaa.dump", target: "s3", finishedAt: NOW.toISOString(), restoreDurationMs: 50 * MIN, restoreEndToEndMs: 46 * MIN };
        const restoreByCopy = carriedTimes([before, report], "ce", ["s3"], NOW);
        const pushed = gauge({ ...report, restoreByCopy });
        // The POST replaces the family: without an s3 series the 45-min one would be deleted and the alert resolve.
        expect(pushed.map(([t]) => t)).toContain("s3");
        const body = metricsBody(metricsFor({ command: "verify", ok: true, database: "ce", message: "", details: { ...report, restoreByCopy } }, NOW));
        expect(body).toMatch(/kx_backup_verify_restore_duration_seconds\{target="s3"\} /);
    });
});

describe("restoreHistory reads only records the catalog checked", () => {
    const KEY = "k".repeat(32);
    const name = (day: number) => `ce/ce-202606${String(day).padStart(2, "0")}-000000-aaaaaa.dump`;
    async function seed(root: string, day: number, o: { signManifest?: boolean; record?: Record<string, unknown>; signRecord?: boolean }) {
        const key = name(day);
        await fs.mkdir(path.join(root, "ce"), { recursive: true });
        await fs.writeFile(path.join(root, key), "dump");
        const manifest = manifestFor(key, "dump");
        await fs.writeFile(path.join(root, `${key}.manifest.json`), JSON.stringify(o.signManifest === false ? manifest : signManifest(manifest, KEY)));
        if (o.record) {
            const r: Record<string, unknown> & { signature?: unknown } = { kind: "kx-backup/verify", database: "ce", key, sha256: manifest.sha256, ok: true, ...o.record };
            await fs.writeFile(path.join(root, `${key}.verify.json`), JSON.stringify(o.signRecord === false ? r : signManifest(r, KEY)));
        }
    }
    const s3Time = (ms: number) => ({ key: name(1), finishedAt: "2026-06-01T01:00:00.000Z", restoreDurationMs: ms / 2, restoreEndToEndMs: ms });

    it("(sound) with BACKUP_SIGNING_KEY an unsigned record beside a real backup sets no copy's time", async () => {
        const root = await fs.mkdtemp(path.join(os.tmpdir(), "kx-review-hist-"));
        await seed(root, 1, { record: { target: "s3", finishedAt: "2026-06-01T01:00:00.000Z", restoreDurationMs: 20 * MIN, restoreEndToEndMs: 45 * MIN } });
        await seed(root, 2, { record: { target: "local", finishedAt: "2026-06-02T01:00:00.000Z", restoreDurationMs: MIN, restoreEndToEndMs: 2 * MIN, restoreByCopy: { s3: s3Time(1) } }, signRecord: false });
        const history = await restoreHistory([new LocalTarget(root)], "ce", KEY);
        expect(history.map((h) => h.target)).toEqual(["s3"]);
        expect(carriedTimes(history, "ce", ["s3"], NOW).s3).toMatchObject({ restoreEndToEndMs: 45 * MIN });
    });

    it("junk 'backups' (unsigned manifest, any .verify.json) newer than the real ones do not push the real records out of the window", async () => {
        // Someone with write access but no key drops two newer fake backups on the (only) target:
        // slice(0, targets + 1) is taken before the checks, so both slots go to junk.
        const root = await fs.mkdtemp(path.join(os.tmpdir(), "kx-review-hist-"));
        await seed(root, 1, { record: { target: "s3", finishedAt: "2026-06-01T01:00:00.000Z", restoreDurationMs: 20 * MIN, restoreEndToEndMs: 45 * MIN } });
        await seed(root, 2, { signManifest: false, record: { target: "local", finishedAt: "x" }, signRecord: false });
        await seed(root, 3, { signManifest: false, record: { target: "local", finishedAt: "x" }, signRecord: false });
        const history = await restoreHistory([new LocalTarget(root)], "ce", KEY);
        // Else S3's 45-min time would no longer be carried, its series would leave the push and the alert resolve.
        expect(carriedTimes(history, "ce", ["s3"], NOW).s3).toMatchObject({ restoreEndToEndMs: 45 * MIN });
    });
});
