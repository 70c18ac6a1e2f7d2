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

/** One copy's newest timed test-restore, as verify measured it. */
export interface CopyTiming {
    /** The backup test-restored. */
    key: string;
    finishedAt: string;
    /** pg_restore's part. */
    restoreDurationMs?: number;
    /** End to end: the measured RTO (see VerifyReport.restoreEndToEndMs). */
    restoreEndToEndMs?: number;
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
export function measuredRestore(r: { restoreDurationMs?: unknown; restoreEndToEndMs?: unknown }): MeasuredRestore {
    const valid = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0;
    const invalid = (field: string, x: unknown): MeasuredRestore => ({ unusable: `${field} is ${JSON.stringify(x) ?? String(x)}` });
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

/** Only the timing fields, so nothing else a record holds is carried on. */
function timingOf(r: { key?: unknown; finishedAt?: unknown; restoreDurationMs?: unknown; restoreEndToEndMs?: unknown }): CopyTiming | undefined {
    if (typeof r.key !== "string" || typeof r.finishedAt !== "string" || when(r.finishedAt) === undefined) {
        return undefined;
    }
    return {
        key: r.key,
        finishedAt: r.finishedAt,
        ...(r.restoreDurationMs !== undefined ? { restoreDurationMs: r.restoreDurationMs as number } : {}),
        ...(r.restoreEndToEndMs !== undefined ? { restoreEndToEndMs: r.restoreEndToEndMs as number } : {}),
    };
}

/**
 * The newest timing of each copy among these records: each record's own (its `target`) and the
 * ones it carries. A carried time is never newer than the record carrying it (verify measured it
 * before), and one that is was not written by verify: it is left out, as is anything at or after
 * `notAfter` (a clock ahead). Times are taken as recorded; `measuredRestore` judges them.
 */
export function newestByCopy(records: readonly TimedRecord[], notAfter?: Date): ByCopy {
    const out: ByCopy = {};
    const limit = notAfter?.getTime() ?? Infinity;
    const offer = (kind: TargetKind, t: CopyTiming) => {
        const at = when(t.finishedAt)!;
        const held = out[kind];
        if (at <= limit && (!held || at > when(held.finishedAt)!)) {
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

/** What verify carries on: every copy's newest usable time (an unusable one is not passed on). */
export function carriedTimes(records: readonly TimedRecord[]): ByCopy {
    const out: ByCopy = {};
    for (const [kind, t] of Object.entries(newestByCopy(records)) as [TargetKind, CopyTiming][]) {
        if ("ms" in measuredRestore(t)) {
            out[kind] = t;
        }
    }
    return out;
}
