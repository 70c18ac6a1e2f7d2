/** Deadlines derived from schedules: a run, including its clean-up, always ends before the next one. */
import { describe, expect, it } from "vitest";
import { minIntervalMinutes } from "../../components/cron";
import { jobTimings, MIN_ACTIVE_SECONDS, TERMINATION_GRACE_SECONDS } from "../../components/kubernetes/timing";

describe("job timings", () => {
    it.each([
        ["backup", "0 */6 * * *", 4 * 3600, 600],
        ["backup", "0 1 * * *", 4 * 3600, 600],
        ["verify", "30 3 * * *", 2 * 3600, 3600],
        ["archive", "0 3 * * 0", 4 * 3600, 3600],
        // Hourly: a 15 min start window, then what is left before the next run.
        ["archive", "15 * * * *", 3600 - 900 - TERMINATION_GRACE_SECONDS - 60, 900],
        ["backup", "0 */2 * * *", 7200 - 600 - TERMINATION_GRACE_SECONDS - 60, 600],
    ] as const)("%s on %s: active %d s, starting %d s", (kind, schedule, active, starting) => {
        const t = jobTimings(kind, schedule);
        expect(t).toEqual({ activeDeadlineSeconds: active, startingDeadlineSeconds: starting, terminationGracePeriodSeconds: 120 });
        expect(t.startingDeadlineSeconds + t.activeDeadlineSeconds + t.terminationGracePeriodSeconds).toBeLessThan(minIntervalMinutes(schedule) * 60);
    });

    it("judges a schedule by its shortest gap, not its usual one", () => {
        // 00:00 and 00:10: ten minutes apart once a day, 23 h 50 min otherwise.
        expect(minIntervalMinutes("0,10 0 * * *")).toBe(10);
        expect(() => jobTimings("backup", "0,10 0 * * *")).toThrow(/runs every 10 min at the closest, which leaves a backup less than 10 min/);
    });

    it("refuses a schedule that leaves less than the minimum run", () => {
        expect(() => jobTimings("verify", "*/15 * * * *")).toThrow(/runs every 15 min/);
        expect(jobTimings("backup", "*/30 * * * *").activeDeadlineSeconds).toBeGreaterThanOrEqual(MIN_ACTIVE_SECONDS);
    });

    it("gives a schedule that fires once in four years the defaults", () => {
        expect(jobTimings("backup", "0 0 29 2 *").activeDeadlineSeconds).toBe(4 * 3600);
    });
});
