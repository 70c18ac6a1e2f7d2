/** The `databases[]` section: connection, schedules, retention, objectives and anomaly thresholds. */
import { maxIntervalMinutes } from "../cron";
import { SUPPORTED_PG_MAJORS } from "../image/pins";
import { jobTimings } from "../kubernetes/timing";
import { CRONJOB_NAME_MAX, cronJobName, kubeName } from "./names";
import { DNS_LABEL, Reader } from "./reader";
import { DatabaseConfig } from "./types";

const DB_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export const DB_KEYS = [
    "name", "host", "port", "podPort", "user", "schedule", "retentionDays", "keepMin", "verifySchedule",
    "rpoHours", "rtoMinutes", "verifyMaxAgeDays", "anomalySizeDropPercent", "anomalyRowsDropPercent", "anomalyMinRows",
    "criticality", "postgresMajor",
];

const MINUTES_PER_DAY = 24 * 60;

/**
 * Default allowed age of the newest verified backup: the verify schedule's longest gap in whole
 * days, plus one day for the run itself and a retry — so the alert fires after one missed verify,
 * never between two scheduled ones (daily → 2 days, weekly → 8 days).
 */
export function defaultVerifyMaxAgeDays(verifySchedule: string): number {
    return Math.ceil(maxIntervalMinutes(verifySchedule) / MINUTES_PER_DAY) + 1;
}

/** Reads `databases[i]`; undefined (with problems recorded) when anything is wrong. */
export function readDatabase(r: Reader, key: string, raw: unknown, namePrefix: string): DatabaseConfig | undefined {
    const o = r.object(key, raw, DB_KEYS);
    if (!o) {
        return undefined;
    }
    const name = r.string(`${key}.name`, o.name, DB_NAME, "a PostgreSQL name: lowercase letters, digits and _, at most 63");
    const schedule = r.cron(`${key}.schedule`, o.schedule);
    const verifySchedule = r.cron(`${key}.verifySchedule`, o.verifySchedule);
    const db = {
        name,
        host: r.string(`${key}.host`, o.host, /^[A-Za-z0-9.-]+$/, "a host or Service name"),
        port: r.port(`${key}.port`, o.port ?? 5432, "the port the job connects to (the Service port)"),
        podPort: r.port(
            `${key}.podPort`,
            o.podPort,
            "the port the PostgreSQL server itself listens on (the Service's targetPort, usually 5432); NetworkPolicy matches it, not the Service port",
        ),
        user: r.string(`${key}.user`, o.user, /^[A-Za-z0-9_.-]+$/, "a PostgreSQL role name"),
        schedule,
        retentionDays: r.int(`${key}.retentionDays`, o.retentionDays, 1, 3650, "days of retention"),
        keepMin: r.int(`${key}.keepMin`, o.keepMin ?? 3, 1, 1000, "backups always kept"),
        verifySchedule,
        rpoHours: r.int(`${key}.rpoHours`, o.rpoHours ?? 24, 1, 8760, "hours of acceptable data loss"),
        rtoMinutes: r.int(`${key}.rtoMinutes`, o.rtoMinutes ?? 30, 1, 10080, "minutes a restore of this database may take"),
        verifyMaxAgeDays: verifySchedule === undefined
            ? undefined
            : r.int(`${key}.verifyMaxAgeDays`, o.verifyMaxAgeDays ?? defaultVerifyMaxAgeDays(verifySchedule), 1, 3650, "days the newest verified backup may be old"),
        anomalySizeDropPercent: r.int(`${key}.anomalySizeDropPercent`, o.anomalySizeDropPercent ?? 50, 1, 100, "percent"),
        anomalyRowsDropPercent: r.int(`${key}.anomalyRowsDropPercent`, o.anomalyRowsDropPercent ?? 50, 1, 100, "percent"),
        anomalyMinRows: r.int(`${key}.anomalyMinRows`, o.anomalyMinRows ?? 1000, 0, 1_000_000_000_000, "rows"),
        criticality: r.oneOf(`${key}.criticality`, o.criticality ?? "medium", ["critical", "high", "medium", "low"] as const),
        postgresMajor: SUPPORTED_PG_MAJORS.includes(o.postgresMajor as number) || o.postgresMajor === undefined
            ? ((o.postgresMajor as number | undefined) ?? 15)
            : r.fail(`${key}.postgresMajor`, o.postgresMajor, `a PostgreSQL major the job image carries: ${SUPPORTED_PG_MAJORS.join(", ")} (jobs/image-pins.json)`),
    };
    if (name !== undefined) {
        for (const kind of ["backup", "verify"] as const) {
            const job = cronJobName(namePrefix, name, kind);
            if (job.length > CRONJOB_NAME_MAX || !DNS_LABEL.test(job)) {
                r.fail(`${key}.name`, name, `a name whose CronJob name "${job}" is a DNS label of at most ${CRONJOB_NAME_MAX} characters`);
            }
        }
        if (!DNS_LABEL.test(kubeName(name))) {
            r.fail(`${key}.name`, name, "a name that, with _ as -, is a Kubernetes label value (no leading or trailing _)");
        }
    }
    if (schedule !== undefined && db.rpoHours !== undefined) {
        const gap = maxIntervalMinutes(schedule);
        if (gap > db.rpoHours * 60) {
            r.fail(`${key}.schedule`, schedule, `a schedule whose longest gap (${Number.isFinite(gap) ? `${gap / 60} h` : "never repeats"}) is within the RPO of ${db.rpoHours} h`);
        }
    }
    checkTimings(r, `${key}.schedule`, schedule, "backup");
    checkTimings(r, `${key}.verifySchedule`, verifySchedule, "verify");
    if (verifySchedule !== undefined && o.verifyMaxAgeDays !== undefined && db.verifyMaxAgeDays !== undefined) {
        const periodDays = Math.ceil(maxIntervalMinutes(verifySchedule) / MINUTES_PER_DAY);
        if (db.verifyMaxAgeDays < periodDays) {
            r.fail(`${key}.verifyMaxAgeDays`, db.verifyMaxAgeDays, `at least the verify schedule's longest gap (${periodDays} days), or the alert fires between two scheduled verifies`);
        }
    }
    return Object.values(db).every((v) => v !== undefined) ? (db as DatabaseConfig) : undefined;
}

/** A schedule so frequent that a run could not finish before the next one is refused. */
export function checkTimings(r: Reader, key: string, schedule: string | undefined, kind: "backup" | "verify" | "archive"): void {
    if (schedule === undefined) {
        return;
    }
    try {
        jobTimings(kind, schedule);
    } catch (e) {
        r.fail(key, schedule, `a schedule that leaves a run time to finish: it ${(e as Error).message}`);
    }
}
