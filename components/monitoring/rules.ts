/**
 * Each database's alerts, as a PrometheusRule spec: a pure function of the validated config. The
 * metric names come from the job's own module (jobs/src/metricNames.ts), so an alert can never
 * watch a name the job does not push; the thresholds are the numbers the job gets in its env
 * (BACKUP_RPO_HOURS, BACKUP_RTO_MINUTES, BACKUP_VERIFY_MAX_AGE_DAYS), from the same config entry.
 *
 * The Pushgateway must be scraped with `honor_labels: true`, so `job="kx_backup"` and `database`
 * are the labels the job pushed, not the scrape job's.
 */
import { lastFailureMetric, METRICS, PUSH_JOB } from "../../jobs/src/metricNames";
import type { DatabaseConfig } from "../config";

export interface AlertRule {
    alert: string;
    expr: string;
    for: string;
    labels: Record<string, string>;
    annotations: { summary: string; description: string };
}

export interface PrometheusRuleSpec {
    groups: { name: string; rules: AlertRule[] }[];
}

/** The label selector of one database's pushed series. */
export function seriesSelector(database: string): string {
    return `{job="${PUSH_JOB}",database="${database}"}`;
}

/** Prometheus severity from the database's criticality. */
function severity(db: DatabaseConfig): string {
    return db.criticality === "critical" ? "critical" : "warning";
}

/** A failure newer than the last success, or a failure never followed by one. */
function failingSince(failure: string, success: string, sel: string): string {
    return `(${failure}${sel} > on(job, database) ${success}${sel}) or (${failure}${sel} unless on(job, database) ${success}${sel})`;
}

export function databaseAlerts(db: DatabaseConfig): AlertRule[] {
    const sel = seriesSelector(db.name);
    const labels = { severity: severity(db), database: db.name, criticality: db.criticality };
    const rpoSeconds = db.rpoHours * 3600;
    const verifySeconds = db.verifyMaxAgeDays * 86400;
    const rtoSeconds = db.rtoMinutes * 60;
    return [
        {
            alert: "KxBackupOlderThanRPO",
            expr: `(time() - ${METRICS.lastSuccess}${sel} > ${rpoSeconds}) or absent(${METRICS.lastSuccess}${sel})`,
            for: "5m",
            labels,
            annotations: {
                summary: `${db.name}: newest backup older than its RPO of ${db.rpoHours} h`,
                description: `No successful backup of ${db.name} for more than ${db.rpoHours} h (or none ever pushed). Check the CronJob's last runs and \`kx-backup status --database ${db.name}\`.`,
            },
        },
        {
            alert: "KxBackupVerifyTooOld",
            expr: `(time() - ${METRICS.lastVerified}${sel} > ${verifySeconds}) or absent(${METRICS.lastVerified}${sel})`,
            for: "5m",
            labels,
            annotations: {
                summary: `${db.name}: last verified restore older than ${db.verifyMaxAgeDays} days`,
                description: `No backup of ${db.name} has passed a restore test for more than ${db.verifyMaxAgeDays} days: nobody knows whether it restores.`,
            },
        },
        {
            alert: "KxBackupFailing",
            expr: failingSince(lastFailureMetric("backup"), METRICS.lastSuccess, sel),
            for: "0m",
            labels,
            annotations: {
                summary: `${db.name}: the last backup failed`,
                description: `The newest backup run of ${db.name} failed after its last success; its log line and notification name the cause.`,
            },
        },
        {
            alert: "KxBackupVerifyFailing",
            expr: failingSince(lastFailureMetric("verify"), METRICS.lastVerified, sel),
            for: "0m",
            labels,
            annotations: {
                summary: `${db.name}: the last restore test failed`,
                description: `The newest verify of ${db.name} failed after its last success; the backup may not restore.`,
            },
        },
        {
            alert: "KxBackupAnomaly",
            expr: `${METRICS.anomaly}${sel} > 0`,
            for: "0m",
            labels,
            annotations: {
                summary: `${db.name}: the newest backup is anomalous`,
                description: `The newest backup of ${db.name} dropped more than ${db.anomalySizeDropPercent}% in size or ${db.anomalyRowsDropPercent}% of a table's rows (tables of at least ${db.anomalyMinRows} rows), or lost a table. Prune keeps the older good backups; check \`kx-backup list --database ${db.name}\`.`,
            },
        },
        {
            alert: "KxBackupRestoreOverRTO",
            expr: `${METRICS.verifyRestoreDuration}${sel} > ${rtoSeconds}`,
            for: "0m",
            labels,
            annotations: {
                summary: `${db.name}: restore from {{ $labels.target }} over its RTO of ${db.rtoMinutes} min`,
                description: `The newest timed restore of ${db.name}'s copy on {{ $labels.target }} needed more than ${db.rtoMinutes} min end to end (fetching and checking the copy, pg_restore, comparing): a real restore from it would miss the RTO (+Inf: its record's time cannot be judged; \`kx-backup status\` says why). verify rotates through the copies; each keeps its own time until it is timed again.`,
            },
        },
    ];
}

export function prometheusRuleSpec(databases: readonly DatabaseConfig[]): PrometheusRuleSpec {
    return { groups: databases.map((db) => ({ name: `kx-backup-${db.name}`, rules: databaseAlerts(db) })) };
}
