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
    expiration?: { days: number };
    noncurrentVersionExpiration: { noncurrentDays: number };
    abortIncompleteMultipartUpload: { daysAfterInitiation: number };
}

/**
 * S3: current objects expire at the folder's retention (a backstop behind the job's own prune,
 * which keeps a minimum count); the expired version then stays recoverable as a noncurrent
 * version for `noncurrentDays` (S3 counts those days from when the version became noncurrent).
 * A folder kept indefinitely (the configuration export) still gets a rule: its abandoned
 * multipart uploads are aborted, and deleted versions expire.
 */
export function s3LifecycleRules(
    prefix: string,
    folders: readonly RetentionInput[],
    noncurrentDays: number,
): S3LifecycleRule[] {
    return folders.map((f) => ({
        id: f.retentionDays === undefined ? `clean-up-${f.name}` : `expire-${f.name}`,
        status: "Enabled",
        filter: { prefix: databasePrefix(prefix, f.name) },
        ...(f.retentionDays === undefined ? {} : { expiration: { days: f.retentionDays } }),
        noncurrentVersionExpiration: { noncurrentDays },
        abortIncompleteMultipartUpload: { daysAfterInitiation: ABORT_MULTIPART_DAYS },
    }));
}

export interface AzureManagementRule {
    name: string;
    enabled: true;
    type: "Lifecycle";
    definition: {
        filters: { blobTypes: string[]; prefixMatch: string[] };
        actions: {
            baseBlob: { delete: { daysAfterModificationGreaterThan: number } };
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
 * name; uncommitted blocks are discarded by Azure itself after 7 days). Azure ages a previous
 * version from its creation — when its data was written — not from when it stopped being
 * current, and offers no other condition for versions. A backup deleted at its retention would
 * then lose its version at once; counting `retention + noncurrentDays` from creation keeps every
 * version at least `noncurrentDays` after it became previous (a version deleted earlier, by hand
 * or by an attacker, is kept longer).
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
                baseBlob: { delete: { daysAfterModificationGreaterThan: f.retentionDays } },
                version: { delete: { daysAfterCreationGreaterThan: f.retentionDays + noncurrentDays } },
            },
        },
    }));
}
