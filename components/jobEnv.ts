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

export interface SecretRefs {
    readonly password: SecretRef;
    readonly ntfyUrl?: SecretRef;
    readonly aws?: { readonly accessKeyId: SecretRef; readonly secretAccessKey: SecretRef };
    readonly azureConnectionString?: SecretRef;
}

type JobSettings = { plain: Partial<Pick<Settings, PlainSettingName>>; secrets: Partial<Record<SecretSettingName, SecretRef>> };

/** Where backups go and how to reach those places: the same for every job. */
function targetSettings(targets: ResolvedTargets, refs: Omit<SecretRefs, "password">): JobSettings {
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
        },
        secrets: {
            ntfyUrl: refs.ntfyUrl,
            awsAccessKeyId: refs.aws?.accessKeyId,
            awsSecretAccessKey: refs.aws?.secretAccessKey,
            azureConnectionString: refs.azureConnectionString,
        },
    };
}

/** A database's backup and verify jobs: its source, its retention, the targets. */
export function jobSettings(db: DatabaseConfig, targets: ResolvedTargets, refs: SecretRefs): JobSettings {
    const t = targetSettings(targets, refs);
    return {
        plain: {
            ...t.plain,
            pgHost: db.host,
            pgPort: db.port,
            pgUser: db.user,
            pgDatabase: db.name,
            retentionDays: db.retentionDays,
            keepMin: db.keepMin,
        },
        secrets: { ...t.secrets, pgPassword: refs.password },
    };
}

/** An archive job: no database, its own retention; kept indefinitely (never pruned) without one. */
export function archiveSettings(retention: { retentionDays?: number; keepMin: number }, targets: ResolvedTargets, refs: Omit<SecretRefs, "password">): JobSettings {
    const t = targetSettings(targets, refs);
    return {
        plain: {
            ...t.plain,
            retentionDays: retention.retentionDays,
            keepMin: retention.keepMin,
            pruneAfterBackup: retention.retentionDays !== undefined,
        },
        secrets: t.secrets,
    };
}

export function archiveEnv(retention: { retentionDays?: number; keepMin: number }, targets: ResolvedTargets, refs: Omit<SecretRefs, "password">): EnvVar[] {
    const { plain, secrets } = archiveSettings(retention, targets, refs);
    return renderEnv(plain, secrets);
}

export function jobEnv(db: DatabaseConfig, targets: ResolvedTargets, refs: SecretRefs): EnvVar[] {
    const { plain, secrets } = jobSettings(db, targets, refs);
    return renderEnv(plain, secrets);
}
