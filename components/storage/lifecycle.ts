/**
 * Retention as storage lifecycle rules, one rule per database folder. Pure functions over plain
 * data: the components pass their output straight to the providers, and tests read them without
 * Pulumi. The folder comes from the job's own naming module, so the rules and the job agree on
 * where a database's backups are.
 */
import { databasePrefix } from "../../jobs/src/naming";

export interface RetentionInput {
    /** The folder under the prefix: a database, an archived volume, or the configuration export. */
    readonly name: string;
    /** Days complete backups are kept; none: kept indefinitely (only clean-up rules). */
    readonly retentionDays?: number;
}

/** Multipart uploads left by a crashed job are aborted after this many days. */
export const ABORT_MULTIPART_DAYS = 1;

export interface S3LifecycleRule {
    id: string;
    status: "Enabled";
    filter: { prefix: string };
    /** Days for a replica's current objects; a clean-up of lone delete markers everywhere else. */
    expiration?: { days: number } | { expiredObjectDeleteMarker: true };
    noncurrentVersionExpiration: { noncurrentDays: number };
    abortIncompleteMultipartUpload: { daysAfterInitiation: number };
}

/**
 * S3, one rule per folder. On a bucket the jobs write, lifecycle never expires a current backup:
 * `prune` does, and only prune knows what must stay — keep-min, the newest verified backup, the
 * last good one behind a run of anomalous or failed backups. An expiration at the retention would
 * delete those behind its back (and with them every copy, once backups have failed for longer
 * than the retention). What prune deletes becomes a noncurrent version, which stays recoverable
 * for `noncurrentDays` (counted from when it became noncurrent), then its lone delete marker
 * goes. A replica (`expireCurrent`) is written by replication alone — delete markers are not
 * replicated, so no prune ever reaches it — and its current objects expire at the retention.
 * Abandoned multipart uploads are aborted after a day everywhere, the kept-forever configuration
 * export included.
 */
export function s3LifecycleRules(
    prefix: string,
    folders: readonly RetentionInput[],
    noncurrentDays: number,
    opts: { readonly expireCurrent: boolean },
): S3LifecycleRule[] {
    return folders.map((f) => {
        const expires = opts.expireCurrent && f.retentionDays !== undefined;
        return {
            id: expires ? `expire-${f.name}` : `clean-up-${f.name}`,
            status: "Enabled",
            filter: { prefix: databasePrefix(prefix, f.name) },
            // S3 takes either days or the delete-marker clean-up in one expiration, never both.
            expiration: expires ? { days: f.retentionDays! } : { expiredObjectDeleteMarker: true },
            noncurrentVersionExpiration: { noncurrentDays },
            abortIncompleteMultipartUpload: { daysAfterInitiation: ABORT_MULTIPART_DAYS },
        };
    });
}

export interface AzureManagementRule {
    name: string;
    enabled: true;
    type: "Lifecycle";
    definition: {
        filters: { blobTypes: string[]; prefixMatch: string[] };
        actions: {
            version: { delete: { daysAfterCreationGreaterThan: number } };
        };
    };
}

/** Azure rule names allow letters and digits only (and must be unique). */
export function azureRuleName(database: string): string {
    return `expire${database.replace(/[^A-Za-z0-9]/g, "")}`;
}

/**
 * Azure: the same plan as S3, for folders with a retention (Azure prefixes include the container
 * name; uncommitted blocks are discarded by Azure itself after 7 days). No rule deletes a current
 * blob: prune does, keeping what must stay. Prune's delete turns the blob into a previous version,
 * and Azure ages a version from its creation — when its data was written — not from when it
 * stopped being current, and offers no other condition for versions: counting
 * `retention + noncurrentDays` from creation keeps a version deleted at its retention at least
 * `noncurrentDays`; one kept longer by prune (keep-min) goes at the next run, into blob soft delete.
 */
export function azureManagementRules(
    container: string,
    prefix: string,
    folders: readonly RetentionInput[],
    noncurrentDays: number,
): AzureManagementRule[] {
    const expiring = folders.filter((f): f is Required<RetentionInput> => f.retentionDays !== undefined);
    const names = expiring.map((d) => azureRuleName(d.name));
    const clash = names.find((n, i) => names.indexOf(n) !== i);
    if (clash) {
        throw new Error(`two folders map to the Azure lifecycle rule name "${clash}": rename one of them`);
    }
    return expiring.map((f) => ({
        name: azureRuleName(f.name),
        enabled: true,
        type: "Lifecycle",
        definition: {
            filters: { blobTypes: ["blockBlob"], prefixMatch: [`${container}/${databasePrefix(prefix, f.name)}`] },
            actions: {
                version: { delete: { daysAfterCreationGreaterThan: f.retentionDays + noncurrentDays } },
            },
        },
    }));
}
