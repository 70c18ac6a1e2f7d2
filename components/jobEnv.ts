/**
 * What each CronJob tells kx-backup, as a pure function of the validated config and the storage
 * that was created. The names and formats come from jobs/src/settings.ts (renderEnv); nothing
 * here spells an environment variable.
 */
import { EnvVar, PlainSettingName, renderEnv, SecretRef, SecretSettingName, Settings } from "../jobs/src/settings";
import { DatabaseConfig } from "./config";
import { BACKUP_MOUNT } from "./kubernetes/backupCronJob";

export interface ResolvedTargets {
    /** Local target on the PVC. */
    readonly local: boolean;
    readonly s3?: { readonly bucket: string; readonly prefix: string; readonly region: string };
    readonly azure?: { readonly container: string; readonly prefix: string; readonly accountUrl?: string };
}

/** Secret references every job of one identity shares (a job's password comes on top). */
export interface SecretRefs {
    readonly ntfyUrl?: SecretRef;
    /** Static AWS keys of this job's identity (dev only). */
    readonly aws?: { readonly accessKeyId: SecretRef; readonly secretAccessKey: SecretRef };
    readonly azureConnectionString?: SecretRef;
    /** The environment's manifest signing key: every job signs or checks with it. */
    readonly signingKey: SecretRef;
}

/** Where a job reports to and what it checks against, besides its targets. */
export interface JobContext {
    readonly targets: ResolvedTargets;
    readonly refs: SecretRefs;
    readonly pushgatewayUrl?: string;
}

type JobSettings = { plain: Partial<Pick<Settings, PlainSettingName>>; secrets: Partial<Record<SecretSettingName, SecretRef>> };

/** Where backups go, how to reach those places, how to sign and whom to tell: the same for every job. */
function commonSettings(ctx: JobContext): JobSettings {
    const { targets, refs } = ctx;
    return {
        plain: {
            localDir: targets.local ? BACKUP_MOUNT : undefined,
            s3Bucket: targets.s3?.bucket,
            s3Prefix: targets.s3?.prefix,
            awsRegion: targets.s3?.region,
            azureContainer: targets.azure?.container,
            azurePrefix: targets.azure?.prefix,
            azureAccountUrl: refs.azureConnectionString ? undefined : targets.azure?.accountUrl,
            logFormat: "json",
            pushgatewayUrl: ctx.pushgatewayUrl,
        },
        secrets: {
            ntfyUrl: refs.ntfyUrl,
            awsAccessKeyId: refs.aws?.accessKeyId,
            awsSecretAccessKey: refs.aws?.secretAccessKey,
            azureConnectionString: refs.azureConnectionString,
            signingKey: refs.signingKey,
        },
    };
}

/**
 * A database's backup or verify job: its source, its retention, its objectives and anomaly
 * thresholds (the same numbers the alert rules use), and the targets. Only the backup CronJob
 * says its runs are scheduled: a backup taken by hand from the same template stays "manual".
 */
export function databaseSettings(db: DatabaseConfig, ctx: JobContext, password: SecretRef, kind: "backup" | "verify"): JobSettings {
    const c = commonSettings(ctx);
    return {
        plain: {
            ...c.plain,
            pgHost: db.host,
            pgPort: db.port,
            pgUser: db.user,
            pgDatabase: db.name,
            retentionDays: db.retentionDays,
            keepMin: db.keepMin,
            rpoHours: db.rpoHours,
            rtoMinutes: db.rtoMinutes,
            verifyMaxAgeDays: db.verifyMaxAgeDays,
            anomalySizeDrop: db.anomalySizeDropPercent,
            anomalyRowsDrop: db.anomalyRowsDropPercent,
            anomalyMinRows: db.anomalyMinRows,
            trigger: kind === "backup" ? "scheduled" : undefined,
        },
        secrets: { ...c.secrets, pgPassword: password },
    };
}

/** An archive job: no database, its own retention; kept indefinitely (never pruned) without one. */
export function archiveSettings(retention: { retentionDays?: number; keepMin: number }, ctx: JobContext): JobSettings {
    const c = commonSettings(ctx);
    return {
        plain: {
            ...c.plain,
            retentionDays: retention.retentionDays,
            keepMin: retention.keepMin,
            pruneAfterBackup: retention.retentionDays !== undefined,
            trigger: "scheduled",
        },
        secrets: c.secrets,
    };
}

export function databaseEnv(db: DatabaseConfig, ctx: JobContext, password: SecretRef, kind: "backup" | "verify"): EnvVar[] {
    const { plain, secrets } = databaseSettings(db, ctx, password, kind);
    return renderEnv(plain, secrets);
}

export function archiveEnv(retention: { retentionDays?: number; keepMin: number }, ctx: JobContext): EnvVar[] {
    const { plain, secrets } = archiveSettings(retention, ctx);
    return renderEnv(plain, secrets);
}
