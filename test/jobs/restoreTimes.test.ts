/**
 * Each copy's newest timed restore (restoreTimes.ts): what verify carries from record to record
 * and what status, the gauge and its alert judge the RTO on, copy by copy.
 */
import { describe, expect, it } from "vitest";
import { carriedTimes, measuredRestore, newestByCopy } from "../../jobs/src/restoreTimes";

const MIN = 60_000;
const at = (h: number) => new Date(Date.UTC(2026, 5, 30, h)).toISOString();
/** The name of the backup taken at hour h (verify records name backups as the catalog lists them). */
const k = (h: number) => `ce/ce-${at(h).replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}-aaaaaa.dump`;
const CE = { database: "ce" };
const rec = (target: unknown, h: number, ms: number, over: Record<string, unknown> = {}) =>
    ({ key: k(h), target, finishedAt: at(h), restoreDurationMs: ms / 2, restoreEndToEndMs: ms, ...over });

describe("measuredRestore", () => {
    it("prefers the end-to-end time, falls back to pg_restore's only where there is none, and never past a bad value", () => {
        expect(measuredRestore({ restoreDurationMs: 1000, restoreEndToEndMs: 1500 })).toEqual({ ms: 1500, endToEnd: true });
        expect(measuredRestore({ restoreDurationMs: 1000 })).toEqual({ ms: 1000, endToEnd: false });
        // A field that is there but not a duration is not replaced by another: the record is unusable.
        expect(measuredRestore({ restoreDurationMs: 1000, restoreEndToEndMs: "soon" })).toEqual({ unusable: 'restoreEndToEndMs is "soon"' });
        expect(measuredRestore({ restoreDurationMs: 1000, restoreEndToEndMs: -5 })).toEqual({ unusable: "restoreEndToEndMs is -5" });
        expect(measuredRestore({ restoreEndToEndMs: Infinity })).toEqual({ unusable: "restoreEndToEndMs is Infinity" });
        expect(measuredRestore({ restoreDurationMs: "2700000" })).toEqual({ unusable: 'restoreDurationMs is "2700000"' });
        expect(measuredRestore({})).toEqual({ unusable: "it records no restore time" });
    });
});

describe("newestByCopy", () => {
    it("keeps each copy's own newest time: the newest record's copy does not speak for the others", () => {
        const byCopy = newestByCopy([rec("s3", 1, 40 * MIN), rec("local", 2, 3 * MIN), rec("local", 3, 4 * MIN), rec("azure", 0, 20 * MIN)], CE);
        expect(byCopy.local).toMatchObject({ key: k(3), restoreEndToEndMs: 4 * MIN });
        expect(byCopy.s3).toMatchObject({ key: k(1), restoreEndToEndMs: 40 * MIN });
        expect(byCopy.azure).toMatchObject({ key: k(0), restoreEndToEndMs: 20 * MIN });
    });

    it("reads the times a record carries, so they outlive the records they came from", () => {
        // The records of the S3 run were pruned (or replaced by a later verify of the same backup).
        const newest = rec("local", 5, 3 * MIN, { restoreByCopy: { s3: { key: k(1), finishedAt: at(1), restoreDurationMs: 1, restoreEndToEndMs: 40 * MIN } } });
        expect(newestByCopy([newest], CE)).toEqual({
            local: { key: k(5), finishedAt: at(5), restoreDurationMs: 1.5 * MIN, restoreEndToEndMs: 3 * MIN },
            s3: { key: k(1), finishedAt: at(1), restoreDurationMs: 1, restoreEndToEndMs: 40 * MIN },
        });
        // A copy's own newer record wins over a carried older one, and the other way round.
        expect(newestByCopy([newest, rec("s3", 4, 10 * MIN)], CE).s3?.key).toBe(k(4));
        expect(newestByCopy([rec("s3", 0, 10 * MIN), newest], CE).s3?.key).toBe(k(1));
    });

    it("a carried time newer than the record that carries it, or after `notAfter`, was not measured by verify: left out", () => {
        const forged = rec("local", 5, 3 * MIN, { restoreByCopy: { s3: { key: k(9), finishedAt: at(9), restoreEndToEndMs: MIN } } });
        expect(newestByCopy([rec("s3", 1, 40 * MIN), forged], CE).s3?.key).toBe(k(1));
        expect(newestByCopy([rec("s3", 1, 40 * MIN), rec("s3", 8, MIN)], { ...CE, notAfter: new Date(at(6)) }).s3?.key).toBe(k(1));
    });

    it("ignores what is not a copy or not a timing: other kinds, no date, arrays, strings, extra fields", () => {
        const byCopy = newestByCopy([
            rec("the-dr-site", 5, MIN),
            rec("local", 5, MIN, { finishedAt: "yesterday" }),
            rec("local", 4, 7 * MIN, { restoreByCopy: ["s3"] }),
            rec("azure", 3, 7 * MIN, { restoreByCopy: "s3" }),
            rec("s3", 3, 9 * MIN, { restoreByCopy: { tape: { key: "k", finishedAt: at(1), restoreEndToEndMs: 1 }, azure: { finishedAt: at(2) }, local: null } }),
            Object.assign(rec("s3", 2, MIN), { extra: "\x1b[2K" }),
        ], CE);
        expect(Object.keys(byCopy).sort()).toEqual(["azure", "local", "s3"]);
        expect(byCopy.local?.key).toBe(k(4));
        expect(byCopy.azure?.key).toBe(k(3));
        expect(byCopy.s3).toEqual({ key: k(3), finishedAt: at(3), restoreDurationMs: 4.5 * MIN, restoreEndToEndMs: 9 * MIN });
    });
});

describe("whose time a copy's is", () => {
    it("the newest backup's restore, not a later test-restore of an older (smaller) backup (verify --backup)", () => {
        const tonight = rec("s3", 5, 45 * MIN);
        const older = { ...rec("s3", 8, 2 * MIN), key: k(1) }; // finished later, on a backup from hour 1
        expect(newestByCopy([tonight, older], CE).s3).toMatchObject({ key: k(5), restoreEndToEndMs: 45 * MIN });
        // The same backup verified again: the later run's time.
        expect(newestByCopy([tonight, { ...rec("s3", 7, 50 * MIN), key: k(5) }], CE).s3).toMatchObject({ restoreEndToEndMs: 50 * MIN });
    });

    it("never throws on what a forged record holds (a toString that is no function, an array nested past the stack)", () => {
        let deep: unknown = 1;
        for (let i = 0; i < 200_000; i++) {
            deep = [deep];
        }
        const poisoned = [
            rec("local", 3, MIN, { restoreEndToEndMs: deep }),
            rec("local", 4, MIN, { restoreByCopy: { s3: { key: k(2), finishedAt: at(2), unusable: { toString: 0 } } } }),
            rec("s3", 2, MIN, { restoreDurationMs: { toString: 0 }, restoreEndToEndMs: undefined }),
        ];
        const byCopy = newestByCopy(poisoned, CE);
        expect(byCopy.local).toMatchObject({ key: k(4), restoreEndToEndMs: MIN }); // the newest backup's, usable
        expect(measuredRestore(newestByCopy([poisoned[0]], CE).local!)).toEqual({ unusable: "restoreEndToEndMs is an array" });
        expect(measuredRestore(byCopy.s3!)).toEqual({ unusable: "unusable is an object" });
        expect(measuredRestore({ restoreEndToEndMs: deep })).toEqual({ unusable: "restoreEndToEndMs is an array" });
        expect(measuredRestore({ restoreDurationMs: "\u009b2J\u202eok" })).toEqual({ unusable: 'restoreDurationMs is "?2J?ok"' });
    });
});

describe("carriedTimes", () => {
    const END = new Date(at(6));

    it("carries only the copies configured now: a retired target's old time neither travels on nor keeps its alert", () => {
        const newest = rec("s3", 5, 3 * MIN, { restoreByCopy: { azure: { key: k(1), finishedAt: at(1), restoreEndToEndMs: 40 * MIN } } });
        expect(Object.keys(carriedTimes([newest, rec("local", 4, MIN)], "ce", ["s3"], END))).toEqual(["s3"]);
        expect(Object.keys(newestByCopy([newest, rec("local", 4, MIN)], { ...CE, kinds: ["s3", "azure"] })).sort()).toEqual(["azure", "s3"]);
    });

    it("carries an unusable newest time as unusable (the copy stays a problem until timed again), never an older one brought back", () => {
        const carried = carriedTimes([rec("s3", 1, 10 * MIN), rec("s3", 2, 20 * MIN, { restoreEndToEndMs: "soon" }), rec("local", 3, 2 * MIN)], "ce", ["local", "s3"], END);
        expect(carried.local?.key).toBe(k(3));
        expect(carried.s3).toEqual({ key: k(2), finishedAt: at(2), unusable: 'restoreEndToEndMs is "soon"' });
        expect(measuredRestore(carried.s3!)).toEqual({ unusable: 'restoreEndToEndMs is "soon"' });
        // ... and read back from the record that carries it, still unusable.
        expect(measuredRestore(newestByCopy([rec("local", 4, MIN, { restoreByCopy: carried })], CE).s3!)).toEqual({ unusable: 'restoreEndToEndMs is "soon"' });
    });

    it("never carries a time after this run's own end (a clock once ahead, a forged date): this run's time is its copy's", () => {
        const ahead = rec("s3", 30, 5 * MIN); // a year's worth of hours would do the same
        const tonight = rec("s3", 6, 45 * MIN);
        expect(carriedTimes([ahead, tonight], "ce", ["s3"], END).s3).toMatchObject({ key: k(6), restoreEndToEndMs: 45 * MIN });
    });

    it("carries only the timing, normalised: no other field, no value that is not a number, no key unfit for a terminal", () => {
        const odd = rec("s3", 2, 9 * MIN, { restoreDurationMs: { huge: "x".repeat(1000) }, note: "hello" });
        expect(carriedTimes([odd], "ce", ["s3"], END).s3).toEqual({ key: k(2), finishedAt: at(2), restoreEndToEndMs: 9 * MIN });
        const spoof = "ce/ce-20260629.dump, 0 d ago) took 2m0s. All copies within RTO";
        for (const key of ["ce/x\u001b[2J", "ce/x\nce: RPO: ok", "ce/\u202eevil", "", 42, spoof, "kong/kong-20260630-010000-aaaaaa.dump", "ce/safety/ce-20260630-010000-aaaaaa.dump"]) {
            expect(carriedTimes([rec("s3", 2, MIN, { key })], "ce", ["s3"], END).s3).toBeUndefined();
        }
    });
});
