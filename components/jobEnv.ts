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

export function jobSettings(
    db: DatabaseConfig,
    targets: ResolvedTargets,
    refs: SecretRefs,
): { plain: Partial<Pick<Settings, PlainSettingName>>; secrets: Partial<Record<SecretSettingName, SecretRef>> } {
    return {
        plain: {
            pgHost: db.host,
            pgPort: db.port,
            pgUser: db.user,
            pgDatabase: db.name,
            localDir: targets.local ? BACKUP_MOUNT : undefined,
            s3Bucket: targets.s3?.bucket,
            s3Prefix: targets.s3?.prefix,
            awsRegion: targets.s3?.region,
            azureContainer: targets.azure?.container,
            azurePrefix: targets.azure?.prefix,
            azureAccountUrl: refs.azureConnectionString ? undefined : targets.azure?.accountUrl,
            retentionDays: db.retentionDays,
            keepMin: db.keepMin,
            logFormat: "json",
        },
        secrets: {
            pgPassword: refs.password,
            ntfyUrl: refs.ntfyUrl,
            awsAccessKeyId: refs.aws?.accessKeyId,
            awsSecretAccessKey: refs.aws?.secretAccessKey,
            azureConnectionString: refs.azureConnectionString,
        },
    };
}

/** The same targets for an archive job: no database, its own retention, prune as configured. */
export function archiveSettings(
    retention: { retentionDays?: number; keepMin: number },
    targets: ResolvedTargets,
    refs: Omit<SecretRefs, "password">,
): { plain: Partial<Pick<Settings, PlainSettingName>>; secrets: Partial<Record<SecretSettingName, SecretRef>> } {
    return {
        plain: {
            localDir: targets.local ? BACKUP_MOUNT : undefined,
            s3Bucket: targets.s3?.bucket,
            s3Prefix: targets.s3?.prefix,
            awsRegion: targets.s3?.region,
            azureContainer: targets.azure?.container,
            azurePrefix: targets.azure?.prefix,
            azureAccountUrl: refs.azureConnectionString ? undefined : targets.azure?.accountUrl,
            retentionDays: retention.retentionDays,
            keepMin: retention.keepMin,
            // Kept indefinitely (no retention): never prune.
            pruneAfterBackup: retention.retentionDays !== undefined,
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

export function archiveEnv(retention: { retentionDays?: number; keepMin: number }, targets: ResolvedTargets, refs: Omit<SecretRefs, "password">): EnvVar[] {
    const { plain, secrets } = archiveSettings(retention, targets, refs);
    return renderEnv(plain, secrets);
}

export function jobEnv(db: DatabaseConfig, targets: ResolvedTargets, refs: SecretRefs): EnvVar[] {
    const { plain, secrets } = jobSettings(db, targets, refs);
    return renderEnv(plain, secrets);
}
