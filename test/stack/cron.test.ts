import { describe, expect, it } from "vitest";
import { maxIntervalMinutes, parseCron } from "../../components/cron";

describe("cron", () => {
    it.each([
        ["0 */6 * * *", 6 * 60],
        ["0 1 * * *", 24 * 60],
        ["30 1 * * *", 24 * 60],
        ["*/15 * * * *", 15],
        ["0 0,12 * * *", 12 * 60],
        ["0 9 * * 1-5", 3 * 24 * 60], // Friday 09:00 to Monday 09:00
        ["0 0 * * 0", 7 * 24 * 60],
        ["@daily", 24 * 60],
        ["@hourly", 60],
        ["0 0 1 * *", 31 * 24 * 60],
        ["0 3 * * SUN", 7 * 24 * 60],
        ["10/25 * * * *", 35], // :10, :35, then :10 of the next hour
    ])("%s repeats at least every %d minutes", (expr, minutes) => {
        expect(maxIntervalMinutes(expr)).toBe(minutes);
    });

    it("treats restricted day-of-month and day-of-week as either (as Kubernetes does)", () => {
        const s = parseCron("0 0 1 * MON");
        expect(s.domRestricted && s.dowRestricted).toBe(true);
        expect(maxIntervalMinutes("0 0 1 * MON")).toBeLessThanOrEqual(7 * 24 * 60);
    });

    it("sees a schedule that never fires twice", () => {
        expect(maxIntervalMinutes("0 0 30 2 *")).toBe(Infinity);
    });

    it.each([
        ["0 0 * * * *", /expected 5 fields/],
        ["60 * * * *", /minute 60 is outside 0-59/],
        ["* * 0 * *", /day of month 0 is outside 1-31/],
        ["* * * 13 *", /month 13 is outside 1-12/],
        ["*/0 * * * *", /step "0" must be a positive/],
        ["5-1 * * * *", /runs backwards/],
        ["@fortnightly", /unknown descriptor/],
        ["TZ=UTC 0 * * * *", /timeZone field/],
        ["a * * * *", /minute "a" is not a number/],
    ])("refuses %s", (expr, message) => {
        expect(() => parseCron(expr)).toThrow(message);
    });
});
