/**
 * Cron expressions as Kubernetes' CronJob controller reads them (robfig/cron's standard parser:
 * five fields, names for months and weekdays, `@daily`-style descriptors). Pure: used by the stack
 * config loader to refuse a schedule Kubernetes would reject, and to check a schedule against a
 * database's RPO before anything is deployed.
 */

const DESCRIPTORS: Record<string, string> = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
};

interface FieldSpec {
    name: string;
    min: number;
    max: number;
    names?: string[];
}

const FIELDS: FieldSpec[] = [
    { name: "minute", min: 0, max: 59 },
    { name: "hour", min: 0, max: 23 },
    { name: "day of month", min: 1, max: 31 },
    {
        name: "month",
        min: 1,
        max: 12,
        names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
    },
    { name: "day of week", min: 0, max: 7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];

export interface CronSchedule {
    minutes: Set<number>;
    hours: Set<number>;
    daysOfMonth: Set<number>;
    months: Set<number>;
    daysOfWeek: Set<number>;
    /** robfig/cron: when both day fields are restricted, a day matching either one fires. */
    domRestricted: boolean;
    dowRestricted: boolean;
}

function parseValue(raw: string, spec: FieldSpec): number {
    const upper = raw.toUpperCase();
    const named = spec.names?.indexOf(upper) ?? -1;
    if (named >= 0) {
        return named + (spec.names!.length === 12 ? 1 : 0);
    }
    if (!/^\d+$/.test(raw)) {
        throw new Error(`${spec.name} "${raw}" is not a number${spec.names ? " or a name" : ""}`);
    }
    const n = Number(raw);
    if (n < spec.min || n > spec.max) {
        throw new Error(`${spec.name} ${n} is outside ${spec.min}-${spec.max}`);
    }
    return n;
}

function parseField(text: string, spec: FieldSpec): { values: Set<number>; restricted: boolean } {
    const values = new Set<number>();
    let restricted = true;
    for (const part of text.split(",")) {
        if (part === "") {
            throw new Error(`${spec.name} has an empty list item`);
        }
        const [rangePart, stepPart, extra] = part.split("/");
        if (extra !== undefined) {
            throw new Error(`${spec.name} "${part}" has more than one "/"`);
        }
        let step = 1;
        if (stepPart !== undefined) {
            if (!/^\d+$/.test(stepPart) || Number(stepPart) === 0) {
                throw new Error(`${spec.name} step "${stepPart}" must be a positive whole number`);
            }
            step = Number(stepPart);
        }
        let lo: number;
        let hi: number;
        if (rangePart === "*" || rangePart === "?") {
            lo = spec.min;
            hi = spec.max;
            if (stepPart === undefined) {
                restricted = false;
            }
        } else if (rangePart.includes("-")) {
            const [a, b, more] = rangePart.split("-");
            if (more !== undefined) {
                throw new Error(`${spec.name} range "${rangePart}" is malformed`);
            }
            lo = parseValue(a, spec);
            hi = parseValue(b, spec);
            if (lo > hi) {
                throw new Error(`${spec.name} range "${rangePart}" runs backwards`);
            }
        } else {
            lo = parseValue(rangePart, spec);
            hi = stepPart === undefined ? lo : spec.max;
        }
        for (let v = lo; v <= hi; v += step) {
            values.add(spec.name === "day of week" && v === 7 ? 0 : v);
        }
    }
    return { values, restricted };
}

/** Parses a schedule; throws an Error whose message says which field is wrong and why. */
export function parseCron(expression: string): CronSchedule {
    if (typeof expression !== "string") {
        throw new Error("a schedule must be a string");
    }
    const trimmed = expression.trim();
    if (/^(TZ|CRON_TZ)=/.test(trimmed)) {
        throw new Error("time zones go in the CronJob's timeZone field, not in the schedule");
    }
    const expanded = trimmed.startsWith("@") ? DESCRIPTORS[trimmed.toLowerCase()] : trimmed;
    if (expanded === undefined) {
        throw new Error(`unknown descriptor "${trimmed}" (allowed: ${Object.keys(DESCRIPTORS).join(", ")})`);
    }
    const fields = expanded.split(/\s+/);
    if (fields.length !== 5) {
        throw new Error(`expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`);
    }
    const parsed = fields.map((f, i) => parseField(f, FIELDS[i]));
    return {
        minutes: parsed[0].values,
        hours: parsed[1].values,
        daysOfMonth: parsed[2].values,
        months: parsed[3].values,
        daysOfWeek: parsed[4].values,
        domRestricted: parsed[2].restricted,
        dowRestricted: parsed[4].restricted,
    };
}

function dayMatches(s: CronSchedule, day: Date): boolean {
    if (!s.months.has(day.getUTCMonth() + 1)) {
        return false;
    }
    const dom = s.daysOfMonth.has(day.getUTCDate());
    const dow = s.daysOfWeek.has(day.getUTCDay());
    if (s.domRestricted && s.dowRestricted) {
        return dom || dow;
    }
    return dom && dow;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * The shortest and the longest time, in minutes, between two consecutive runs of the schedule,
 * measured over four years (a leap cycle) so that monthly and yearly schedules are judged by their
 * worst gap. Both are `Infinity` when the schedule fires at most once in that span ("0 0 30 2 *").
 */
export function intervalMinutes(expression: string): { min: number; max: number } {
    const s = parseCron(expression);
    const dayMinutes = [...s.hours]
        .sort((a, b) => a - b)
        .flatMap((h) => [...s.minutes].sort((a, b) => a - b).map((m) => h * 60 + m));
    const start = Date.UTC(2024, 0, 1);
    const days = 4 * 366;
    let previous: number | undefined;
    let worst = 0;
    let best = Infinity;
    for (let d = 0; d < days; d++) {
        const dayStart = start + d * DAY;
        if (!dayMatches(s, new Date(dayStart))) {
            continue;
        }
        for (const m of dayMinutes) {
            const t = dayStart + m * MINUTE;
            if (previous !== undefined) {
                const gap = (t - previous) / MINUTE;
                worst = Math.max(worst, gap);
                best = Math.min(best, gap);
            }
            previous = t;
        }
    }
    return worst === 0 ? { min: Infinity, max: Infinity } : { min: best, max: worst };
}

/** The longest gap between two runs, in minutes (see intervalMinutes). */
export function maxIntervalMinutes(expression: string): number {
    return intervalMinutes(expression).max;
}

/** The shortest gap between two runs, in minutes: a run must end within it (see intervalMinutes). */
export function minIntervalMinutes(expression: string): number {
    return intervalMinutes(expression).min;
}
