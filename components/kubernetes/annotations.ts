/**
 * Plain facts about each CronJob, as annotations. Its env may be unknown at preview (it holds
 * the bucket name), but these never are, so the policy pack can check retention and coverage
 * before anything exists.
 */
export const ANNOTATIONS = {
    database: "backup.krystalinex.io/database",
    retentionDays: "backup.krystalinex.io/retention-days",
    s3Prefix: "backup.krystalinex.io/s3-lifecycle-prefix",
    azurePrefix: "backup.krystalinex.io/azure-lifecycle-prefix",
} as const;
