/**
 * Each copy's newest timed restore (restoreTimes.ts): what verify carries from record to record
 * and what status, the gauge and its alert judge the RTO on, copy by copy.
 */
import { describe, expect, it } from "vitest";
import { carriedTimes, measuredRestore, newestByCopy } from "../../jobs/src/restoreTimes";

const MIN = 60_000;
const at = (h: number) => new Date(Date.UTC(2026, 5, 30, h)).toISOString();
const rec = (target: unknown, h: number, ms: number, over: Record<string, unknown> = {}) =>
    ({ key: `ce/b${h}.dump`, target, finishedAt: at(h), restoreDurationMs: ms / 2, restoreEndToEndMs: ms, ...over });

describe("measuredRestore", () => {
    it("prefers the end-to-end time, falls back to pg_restore's only where there is none, and never past a bad value", () => {
        expect(measuredRestore({ restoreDurationMs: 1000, restoreEndToEndMs: 1500 })).toEqual({ ms: 1500, endToEnd: true });
        expect(measuredRestore({ restoreDurationMs: 1000 })).toEqual({ ms: 1000, endToEnd: false });
        // A field that is there but not a duration is not replaced by another: the record is unusable.
        expect(measuredRestore({ restoreDurationMs: 1000, restoreEndToEndMs: "soon" })).toEqual({ unusable: 'restoreEndToEndMs is "soon"' });
        expect(measuredRestore({ restoreDurationMs: 1000, restoreEndToEndMs: -5 })).toEqual({ unusable: "restoreEndToEndMs is -5" });
        expect(measuredRestore({ restoreEndToEndMs: Infinity })).toEqual({ unusable: "restoreEndToEndMs is null" });
        expect(measuredRestore({ restoreDurationMs: "2700000" })).toEqual({ unusable: 'restoreDurationMs is "2700000"' });
        expect(measuredRestore({})).toEqual({ unusable: "it records no restore time" });
    });
});

describe("newestByCopy", () => {
    it("keeps each copy's own newest time: the newest record's copy does not speak for the others", () => {
        const byCopy = newestByCopy([rec("s3", 1, 40 * MIN), rec("local", 2, 3 * MIN), rec("local", 3, 4 * MIN), rec("azure", 0, 20 * MIN)]);
        expect(byCopy.local).toMatchObject({ key: "ce/b3.dump", restoreEndToEndMs: 4 * MIN });
        expect(byCopy.s3).toMatchObject({ key: "ce/b1.dump", restoreEndToEndMs: 40 * MIN });
        expect(byCopy.azure).toMatchObject({ key: "ce/b0.dump", restoreEndToEndMs: 20 * MIN });
    });

    it("reads the times a record carries, so they outlive the records they came from", () => {
        // The records of the S3 run were pruned (or replaced by a later verify of the same backup).
        const newest = rec("local", 5, 3 * MIN, { restoreByCopy: { s3: { key: "ce/b1.dump", finishedAt: at(1), restoreDurationMs: 1, restoreEndToEndMs: 40 * MIN } } });
        expect(newestByCopy([newest])).toEqual({
            local: { key: "ce/b5.dump", finishedAt: at(5), restoreDurationMs: 1.5 * MIN, restoreEndToEndMs: 3 * MIN },
            s3: { key: "ce/b1.dump", finishedAt: at(1), restoreDurationMs: 1, restoreEndToEndMs: 40 * MIN },
        });
        // A copy's own newer record wins over a carried older one, and the other way round.
        expect(newestByCopy([newest, rec("s3", 4, 10 * MIN)]).s3?.key).toBe("ce/b4.dump");
        expect(newestByCopy([rec("s3", 0, 10 * MIN), newest]).s3?.key).toBe("ce/b1.dump");
    });

    it("a carried time newer than the record that carries it, or after `notAfter`, was not measured by verify: left out", () => {
        const forged = rec("local", 5, 3 * MIN, { restoreByCopy: { s3: { key: "ce/b9.dump", finishedAt: at(9), restoreEndToEndMs: MIN } } });
        expect(newestByCopy([rec("s3", 1, 40 * MIN), forged]).s3?.key).toBe("ce/b1.dump");
        expect(newestByCopy([rec("s3", 1, 40 * MIN), rec("s3", 8, MIN)], { notAfter: new Date(at(6)) }).s3?.key).toBe("ce/b1.dump");
    });

    it("ignores what is not a copy or not a timing: other kinds, no date, arrays, strings, extra fields", () => {
        const byCopy = newestByCopy([
            rec("the-dr-site", 5, MIN),
            rec("local", 5, MIN, { finishedAt: "yesterday" }),
            rec("local", 4, 7 * MIN, { restoreByCopy: ["s3"] }),
            rec("azure", 3, 7 * MIN, { restoreByCopy: "s3" }),
            rec("s3", 3, 9 * MIN, { restoreByCopy: { tape: { key: "k", finishedAt: at(1), restoreEndToEndMs: 1 }, azure: { finishedAt: at(2) }, local: null } }),
            Object.assign(rec("s3", 2, MIN), { extra: "\x1b[2K" }),
        ]);
        expect(Object.keys(byCopy).sort()).toEqual(["azure", "local", "s3"]);
        expect(byCopy.local?.key).toBe("ce/b4.dump");
        expect(byCopy.azure?.key).toBe("ce/b3.dump");
        expect(byCopy.s3).toEqual({ key: "ce/b3.dump", finishedAt: at(3), restoreDurationMs: 4.5 * MIN, restoreEndToEndMs: 9 * MIN });
    });
});

describe("carriedTimes", () => {
    const END = new Date(at(6));

    it("carries only the copies configured now: a retired target's old time neither travels on nor keeps its alert", () => {
        const newest = rec("s3", 5, 3 * MIN, { restoreByCopy: { azure: { key: "ce/b1.dump", finishedAt: at(1), restoreEndToEndMs: 40 * MIN } } });
        expect(Object.keys(carriedTimes([newest, rec("local", 4, MIN)], ["s3"], END))).toEqual(["s3"]);
        expect(Object.keys(newestByCopy([newest, rec("local", 4, MIN)], { kinds: ["s3", "azure"] })).sort()).toEqual(["azure", "s3"]);
    });

    it("carries an unusable newest time as unusable (the copy stays a problem until timed again), never an older one brought back", () => {
        const carried = carriedTimes([rec("s3", 1, 10 * MIN), rec("s3", 2, 20 * MIN, { restoreEndToEndMs: "soon" }), rec("local", 3, 2 * MIN)], ["local", "s3"], END);
        expect(carried.local?.key).toBe("ce/b3.dump");
        expect(carried.s3).toEqual({ key: "ce/b2.dump", finishedAt: at(2), unusable: 'restoreEndToEndMs is "soon"' });
        expect(measuredRestore(carried.s3!)).toEqual({ unusable: 'restoreEndToEndMs is "soon"' });
        // ... and read back from the record that carries it, still unusable.
        expect(measuredRestore(newestByCopy([rec("local", 4, MIN, { restoreByCopy: carried })]).s3!)).toEqual({ unusable: 'restoreEndToEndMs is "soon"' });
    });

    it("never carries a time after this run's own end (a clock once ahead, a forged date): this run's time is its copy's", () => {
        const ahead = rec("s3", 30, 5 * MIN); // a year's worth of hours would do the same
        const tonight = rec("s3", 6, 45 * MIN);
        expect(carriedTimes([ahead, tonight], ["s3"], END).s3).toMatchObject({ key: "ce/b6.dump", restoreEndToEndMs: 45 * MIN });
    });

    it("carries only the timing, normalised: no other field, no value that is not a number, no key unfit for a terminal", () => {
        const odd = rec("s3", 2, 9 * MIN, { restoreDurationMs: { huge: "x".repeat(1000) }, note: "hello" });
        expect(carriedTimes([odd], ["s3"], END).s3).toEqual({ key: "ce/b2.dump", finishedAt: at(2), restoreEndToEndMs: 9 * MIN });
        for (const key of ["ce/x\u001b[2J", "ce/x\nce: RPO: ok", "ce/\u202eevil", "", 42]) {
            expect(carriedTimes([rec("s3", 2, MIN, { key })], ["s3"], END).s3).toBeUndefined();
        }
    });
});
