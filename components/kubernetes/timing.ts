/**
 * How long a scheduled run may wait, run and take to stop, derived from its schedule. Pure: the
 * config validator refuses a schedule too frequent for a sane run, and the CronJob components
 * render exactly these numbers.
 *
 * A run occupies at most startingDeadline (a late start) + activeDeadline (then the Job controller
 * stops it) + terminationGracePeriod (SIGTERM to SIGKILL). That sum stays below the shortest gap
 * between two scheduled times, so with `concurrencyPolicy: Forbid` a slow run is stopped — and
 * says so — instead of silently making the next scheduled run skip.
 */
import { minIntervalMinutes } from "../cron";

export type ScheduledKind = "backup" | "verify" | "archive";

/**
 * On SIGTERM (deadline, node drain, eviction) kx-backup aborts every upload (one S3
 * AbortMultipartUpload / discarded Azure blocks per target), stops pg_dump/tar/psql in their
 * process group, removes partial files and temp dirs, logs one failure line and notifies (ntfy,
 * webhook and Pushgateway in parallel, each at most 3 tries of 10 s plus 1.5 s backoff: ~32 s).
 * 120 s covers that with room for a slow cloud API; SIGKILL after it would leave the debris the
 * clean-up exists to remove.
 */
export const TERMINATION_GRACE_SECONDS = 120;

/** Defaults when the schedule leaves room: a 4 h backup/archive, a 2 h verify (the runbook's full-restore RTO). */
const DEFAULTS: Record<ScheduledKind, { active: number; starting: number }> = {
    backup: { active: 4 * 3600, starting: 600 },
    verify: { active: 2 * 3600, starting: 3600 },
    archive: { active: 4 * 3600, starting: 3600 },
};

/** Below this a run cannot do useful work: the schedule is refused. */
export const MIN_ACTIVE_SECONDS = 10 * 60;

/** Slack between "stopped" and the next scheduled time (clock skew, controller latency). */
const SLACK_SECONDS = 60;

export interface JobTimings {
    readonly activeDeadlineSeconds: number;
    readonly startingDeadlineSeconds: number;
    readonly terminationGracePeriodSeconds: number;
}

/** The timings for a kind of job on a schedule; throws when the schedule is too frequent. */
export function jobTimings(kind: ScheduledKind, schedule: string): JobTimings {
    const gapMinutes = minIntervalMinutes(schedule);
    const gap = Number.isFinite(gapMinutes) ? gapMinutes * 60 : Infinity;
    const d = DEFAULTS[kind];
    const starting = Math.min(d.starting, Math.floor(gap / 4));
    const active = Math.min(d.active, gap - starting - TERMINATION_GRACE_SECONDS - SLACK_SECONDS);
    if (!(active >= MIN_ACTIVE_SECONDS)) {
        throw new Error(
            `runs every ${gapMinutes} min at the closest, which leaves a ${kind} less than ${MIN_ACTIVE_SECONDS / 60} min ` +
                `(after a ${starting} s start window and a ${TERMINATION_GRACE_SECONDS} s stop)`,
        );
    }
    return { activeDeadlineSeconds: active, startingDeadlineSeconds: starting, terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS };
}
