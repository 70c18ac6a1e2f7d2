/**
 * The measured RTO of each copy. verify rotates through the targets: one run test-restores the
 * local copy, the next the S3 one, and so on, so the newest record alone says how long a restore
 * from one copy takes. After the backup volume is lost, the restore that matters is the one from
 * S3 or Azure: each copy keeps its own newest time, and the RTO is judged on every one.
 *
 * Each verify record carries the newest time of every copy it knows (`restoreByCopy`), its own
 * included, so the times survive a record being replaced and backups being pruned. Pure: status,
 * verify and the metric all read them through `newestByCopy`.
 */
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
 * The restore time a record measured, as the RTO is judged: end to end (fetch, checks,
 * pg_restore, comparison); for a record written before that was measured (no such field),
 * pg_restore's part, said as such, as it is an underestimate. A field that is there but not a
 * duration (a string, negative, not finite) is never replaced by another: the record is
 * unusable, and the RTO cannot be judged from it.
 */
export function measuredRestore(r: { restoreDurationMs?: unknown; restoreEndToEndMs?: unknown; unusable?: unknown }): MeasuredRestore {
    const valid = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0;
    const invalid = (field: string, x: unknown): MeasuredRestore => ({ unusable: `${field} is ${(JSON.stringify(x) ?? String(x)).slice(0, 80)}` });
    if (r.unusable !== undefined) {
        return { unusable: printable(String(r.unusable)).slice(0, 200) || "unusable" };
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
 * Text from storage that may reach a terminal: without control characters (escapes, line breaks)
 * or bidirectional overrides, which would let a record rewrite what status prints.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/;

function printable(text: string): string {
    return text.replace(new RegExp(UNPRINTABLE.source, "g"), "?");
}

/**
 * Only the timing fields, normalised, so nothing else a record holds is carried on: the times
 * as numbers, or why they cannot be judged. None without a key fit for a terminal and a date.
 */
function timingOf(r: { key?: unknown; finishedAt?: unknown; restoreDurationMs?: unknown; restoreEndToEndMs?: unknown; unusable?: unknown }): CopyTiming | undefined {
    if (typeof r.key !== "string" || r.key.length === 0 || r.key.length > 1024 || UNPRINTABLE.test(r.key) || typeof r.finishedAt !== "string" || when(r.finishedAt) === undefined) {
        return undefined;
    }
    const measured = measuredRestore(r);
    if ("unusable" in measured) {
        return { key: r.key, finishedAt: r.finishedAt, unusable: measured.unusable };
    }
    return {
        key: r.key,
        finishedAt: r.finishedAt,
        ...(typeof r.restoreDurationMs === "number" && Number.isFinite(r.restoreDurationMs) ? { restoreDurationMs: r.restoreDurationMs } : {}),
        ...(measured.endToEnd ? { restoreEndToEndMs: measured.ms } : {}),
    };
}

/**
 * The newest timing of each copy among these records: each record's own (its `target`) and the
 * ones it carries. A carried time is never newer than the record carrying it (verify measured it
 * before), and one that is was not written by verify: it is left out, as is anything after
 * `notAfter` (a clock ahead). Only the `kinds` configured now, when given: a copy that is no
 * longer configured (a PVC gone, a target retired) has no RTO left to judge, and no alert to
 * keep firing. Times are taken as recorded; `measuredRestore` judges them.
 */
export function newestByCopy(records: readonly TimedRecord[], o: { notAfter?: Date; kinds?: readonly string[] } = {}): ByCopy {
    const out: ByCopy = {};
    const limit = o.notAfter?.getTime() ?? Infinity;
    const offer = (kind: TargetKind, t: CopyTiming) => {
        const at = when(t.finishedAt)!;
        const held = out[kind];
        if (at <= limit && (!o.kinds || o.kinds.includes(kind)) && (!held || at > when(held.finishedAt)!)) {
            out[kind] = t;
        }
    };
    for (const r of records) {
        const own = timingOf(r);
        if (!own) {
            continue;
        }
        if (isTargetKind(r.target)) {
            offer(r.target, own);
        }
        const carried = r.restoreByCopy;
        if (carried && typeof carried === "object" && !Array.isArray(carried)) {
            for (const [kind, value] of Object.entries(carried as Record<string, unknown>)) {
                const t = isTargetKind(kind) && value && typeof value === "object" ? timingOf(value as TimedRecord) : undefined;
                if (t && when(t.finishedAt)! <= when(own.finishedAt)!) {
                    offer(kind as TargetKind, t);
                }
            }
        }
    }
    return out;
}

/**
 * What verify carries on: every configured copy's newest time, an unusable one included (the copy
 * stays a problem, and its alert on, until it is timed again: never an older time brought back).
 * Nothing after this run's own finish: a record never carries a time newer than itself.
 */
export function carriedTimes(records: readonly TimedRecord[], kinds: readonly string[], notAfter: Date): ByCopy {
    return newestByCopy(records, { kinds, notAfter });
}
