/**
 * The measured RTO of each copy. verify rotates through the targets: one run test-restores the
 * local copy, the next the S3 one, and so on, so the newest record alone says how long a restore
 * from one copy takes. After the backup volume is lost, the restore that matters is the one from
 * S3 or Azure: each copy keeps its own newest time, and the RTO is judged on every one.
 *
 * Each verify record carries the newest time of every copy it knows (`restoreByCopy`), its own
 * included, so the times survive a record being replaced and backups being pruned. Pure: status
 * and verify read the times through `newestByCopy`, the rotation through `lastRestoredAt`, and
 * status and the gauge judge each with `measuredRestore`. Records come from storage: nothing here
 * throws on what they hold, and a key must name one of this database's backups (the callers pass
 * only full, good backups' records).
 */
import { CLOCK_SKEW_MS } from "./catalog";
import { parseBackupName } from "./naming";
import { TARGET_KINDS, TargetKind } from "./targets";

/** One copy's newest timed test-restore, as verify measured it (normalised: see timingOf). */
export interface CopyTiming {
    /** The backup test-restored. */
    key: string;
    finishedAt: string;
    /** pg_restore's part. */
    restoreDurationMs?: number;
    /** End to end: the measured RTO (see VerifyReport.restoreEndToEndMs). */
    restoreEndToEndMs?: number;
    /** Why the record's time cannot be judged: carried as such, so the copy stays a problem until timed again. */
    unusable?: string;
}

export type ByCopy = Partial<Record<TargetKind, CopyTiming>>;

/** A verify record as far as its timings go; fields are unknown: the text came from storage. */
export interface TimedRecord {
    key?: unknown;
    target?: unknown;
    finishedAt?: unknown;
    restoreDurationMs?: unknown;
    restoreEndToEndMs?: unknown;
    restoreByCopy?: unknown;
}

export type MeasuredRestore = { ms: number; endToEnd: boolean } | { unusable: string };

/**
 * A value from storage, said in a problem line: numbers as they are, strings quoted (shortened,
 * printable), anything else by its type. Never String() or JSON.stringify of the value itself: a
 * forged record can make those throw (a `toString` that is not a function, an array nested deep
 * enough to overflow the stack) and fail every verify and status that reads it.
 */
function said(x: unknown): string {
    if (typeof x === "number") {
        return String(x);
    }
    if (typeof x === "string") {
        return JSON.stringify(printable(x.slice(0, 40)));
    }
    return x === null ? "null" : Array.isArray(x) ? "an array" : typeof x === "object" ? "an object" : `a ${typeof x}`;
}

/**
 * The restore time a record measured, as the RTO is judged: end to end (fetch, checks,
 * pg_restore, comparison); for a record written before that was measured (no such field),
 * pg_restore's part, said as such, as it is an underestimate. A field that is there but not a
 * duration (a string, negative, not finite) is never replaced by another: the record is
 * unusable, and the RTO cannot be judged from it. Never throws, whatever the record holds.
 */
export function measuredRestore(r: { restoreDurationMs?: unknown; restoreEndToEndMs?: unknown; unusable?: unknown }): MeasuredRestore {
    const valid = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0;
    const invalid = (field: string, x: unknown): MeasuredRestore => ({ unusable: `${field} is ${said(x)}` });
    if (r.unusable !== undefined) {
        return { unusable: typeof r.unusable === "string" && r.unusable.length > 0 ? printable(r.unusable.slice(0, 200)) : `unusable is ${said(r.unusable)}` };
    }
    if (r.restoreEndToEndMs !== undefined) {
        if (!valid(r.restoreEndToEndMs)) {
            return invalid("restoreEndToEndMs", r.restoreEndToEndMs);
        }
        // verify times pg_restore inside the whole: a whole shorter than its part was not written by it.
        if (valid(r.restoreDurationMs) && r.restoreEndToEndMs < r.restoreDurationMs) {
            return { unusable: `restoreEndToEndMs ${r.restoreEndToEndMs} is shorter than its own pg_restore part, restoreDurationMs ${r.restoreDurationMs}` };
        }
        return { ms: r.restoreEndToEndMs, endToEnd: true };
    }
    if (r.restoreDurationMs === undefined) {
        return { unusable: "it records no restore time" };
    }
    return valid(r.restoreDurationMs) ? { ms: r.restoreDurationMs, endToEnd: false } : invalid("restoreDurationMs", r.restoreDurationMs);
}

export function isTargetKind(x: unknown): x is TargetKind {
    return (TARGET_KINDS as readonly unknown[]).includes(x);
}

function when(x: unknown): number | undefined {
    const t = typeof x === "string" ? Date.parse(x) : NaN;
    return Number.isNaN(t) ? undefined : t;
}

/**
 * Text from storage that may reach a terminal: without control characters (escapes, line breaks,
 * C1) or bidirectional overrides, which would let a record rewrite what status prints.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g;

function printable(text: string): string {
    return text.replace(UNPRINTABLE, "?");
}

/** The backup a key names, when it is one of this database's (`<db>/<name>`, as the catalog lists them). */
function backupTakenAt(key: unknown, database: string): number | undefined {
    if (typeof key !== "string" || !key.startsWith(`${database}/`)) {
        return undefined;
    }
    const name = key.slice(database.length + 1);
    const parsed = name.includes("/") ? undefined : parseBackupName(name);
    return parsed?.database === database ? parsed.takenAt.getTime() : undefined;
}

type Raw = { key?: unknown; finishedAt?: unknown; restoreDurationMs?: unknown; restoreEndToEndMs?: unknown; unusable?: unknown };

/**
 * Only the timing fields, normalised, so nothing else a record holds is carried on: the times
 * as numbers, or why they cannot be judged. None without a date, or whose key is not the name of
 * one of this database's backups (the key is printed by status, and orders the times).
 */
function timingOf(r: Raw, database: string): CopyTiming | undefined {
    const taken = backupTakenAt(r.key, database);
    const finished = when(r.finishedAt);
    // A backup is restored after it was taken: one named for a later time (a node's clock ahead,
    // a forged key) would outrank every real measurement of that copy, as the newest backup's.
    if (taken === undefined || finished === undefined || taken > finished + CLOCK_SKEW_MS) {
        return undefined;
    }
    const key = r.key as string;
    const measured = measuredRestore(r);
    if ("unusable" in measured) {
        return { key, finishedAt: r.finishedAt as string, unusable: measured.unusable };
    }
    return {
        key,
        finishedAt: r.finishedAt as string,
        ...(typeof r.restoreDurationMs === "number" && Number.isFinite(r.restoreDurationMs) ? { restoreDurationMs: r.restoreDurationMs } : {}),
        ...(measured.endToEnd ? { restoreEndToEndMs: measured.ms } : {}),
    };
}

function carriedEntries(r: TimedRecord): [string, unknown][] {
    const carried = r.restoreByCopy;
    return carried && typeof carried === "object" && !Array.isArray(carried) ? Object.entries(carried as Record<string, unknown>) : [];
}

/**
 * The newest timing of each copy among these records: each record's own (its `target`) and the
 * ones it carries; the newest backup's first, then the latest run (a test-restore of an older or
 * smaller backup, `verify --backup`, does not stand for today's size). A carried time is never
 * newer than the record carrying it (verify measured it before), and one that is was not written
 * by verify: it is left out, as is anything after `notAfter` (a clock ahead). Only the `kinds`
 * configured now, when given: a copy that is no longer configured (a PVC gone, a target retired)
 * has no RTO left to judge, and no alert to keep firing. The records must be of full backups
 * (the callers' catalogs tell); times are taken as recorded, and `measuredRestore` judges them.
 */
export function newestByCopy(records: readonly TimedRecord[], o: { database: string; notAfter?: Date; kinds?: readonly string[] }): ByCopy {
    const out: ByCopy = {};
    const rank = new Map<TargetKind, [number, number]>();
    const limit = o.notAfter?.getTime() ?? Infinity;
    const offer = (kind: TargetKind, t: CopyTiming) => {
        const r: [number, number] = [backupTakenAt(t.key, o.database)!, when(t.finishedAt)!];
        const held = rank.get(kind);
        if (r[1] <= limit && (!o.kinds || o.kinds.includes(kind)) && (!held || r[0] > held[0] || (r[0] === held[0] && r[1] > held[1]))) {
            out[kind] = t;
            rank.set(kind, r);
        }
    };
    for (const r of records) {
        const own = timingOf(r, o.database);
        if (!own) {
            continue;
        }
        if (isTargetKind(r.target)) {
            offer(r.target, own);
        }
        for (const [kind, value] of carriedEntries(r)) {
            const t = isTargetKind(kind) && value && typeof value === "object" ? timingOf(value as Raw, o.database) : undefined;
            if (t && when(t.finishedAt)! <= when(own.finishedAt)!) {
                offer(kind as TargetKind, t);
            }
        }
    }
    return out;
}

/**
 * When each copy was last test-restored, by the records' own runs and the times they carry (a
 * record replaced by a later verify of the same backup still says, through its successor, when
 * the copy it named was timed): the rotation's input. A carried entry counts only as
 * newestByCopy would take it (this database's backup, dated sanely, no later than its record). Pure.
 */
export function lastRestoredAt(records: readonly TimedRecord[], database: string): Map<string, number> {
    const last = new Map<string, number>();
    const seen = (kind: string, at: number) => last.set(kind, Math.max(at, last.get(kind) ?? -Infinity));
    for (const r of records) {
        const own = when(r.finishedAt);
        if (own === undefined) {
            continue;
        }
        if (typeof r.target === "string") {
            seen(r.target, own);
        }
        for (const [kind, value] of carriedEntries(r)) {
            const t = isTargetKind(kind) && value && typeof value === "object" ? timingOf(value as Raw, database) : undefined;
            const at = t ? when(t.finishedAt)! : undefined;
            if (at !== undefined && at <= own) {
                seen(kind, at);
            }
        }
    }
    return last;
}

/**
 * What verify carries on: every configured copy's newest time, an unusable one included (the copy
 * stays a problem, and its alert on, until it is timed again: never an older time brought back).
 * Nothing after this run's own finish: a record never carries a time newer than itself.
 */
export function carriedTimes(records: readonly TimedRecord[], database: string, kinds: readonly string[], notAfter: Date): ByCopy {
    return newestByCopy(records, { database, kinds, notAfter });
}
