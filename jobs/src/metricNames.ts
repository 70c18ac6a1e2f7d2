/**
 * The Prometheus metric names kx-backup pushes (per database, to the Pushgateway group
 * `job="kx_backup", database="<db>"`). The job's pushes (notify.ts) and the stack's alert rules
 * and dashboard (components/) read them from here, so an alert can never watch a name the job
 * does not push. Pure: no I/O.
 */
export const PUSH_JOB = "kx_backup";

export const METRICS = {
    /** Last successful full backup, unix seconds: alert when older than the RPO. */
    lastSuccess: "kx_backup_last_success_timestamp_seconds",
    /** Duration of the last successful backup, seconds. */
    duration: "kx_backup_duration_seconds",
    /** Size of the last successful backup, bytes. */
    size: "kx_backup_size_bytes",
    /** Last successful restore test (verify), unix seconds. */
    lastVerified: "kx_backup_last_verified_timestamp_seconds",
    /** Restore time measured by the last verify, seconds: the measured RTO. */
    verifyRestoreDuration: "kx_backup_verify_restore_duration_seconds",
    /** 1 while the newest backup is flagged anomalous (a large drop in size or rows), else 0. */
    anomaly: "kx_backup_anomaly",
} as const;

export type FailingCommand = "backup" | "prune" | "verify" | "restore" | "archive" | "restore-archive" | "adopt" | "undelete" | "status";

/** Last failure of a command, unix seconds. */
export function lastFailureMetric(command: FailingCommand): string {
    return `kx_backup_${command.replace(/-/g, "_")}_last_failure_timestamp_seconds`;
}
