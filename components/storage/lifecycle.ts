/**
 * Retention as storage lifecycle rules, one rule per database folder. Pure functions over plain
 * data: the components pass their output straight to the providers, and tests read them without
 * Pulumi. The folder comes from the job's own naming module, so the rules and the job agree on
 * where a database's backups are.
 */
import { databasePrefix } from "../../jobs/src/naming";

export interface RetentionInput {
    readonly name: string;
    readonly retentionDays: number;
}

/** Multipart uploads left by a crashed job are aborted after this many days. */
export const ABORT_MULTIPART_DAYS = 1;

export interface S3LifecycleRule {
    id: string;
    status: "Enabled";
    filter: { prefix: string };
    expiration: { days: number };
    noncurrentVersionExpiration: { noncurrentDays: number };
    abortIncompleteMultipartUpload: { daysAfterInitiation: number };
}

/**
 * S3: current objects expire at the database's retention (a backstop behind the job's own prune,
 * which keeps a minimum count); the expired version then stays recoverable as a noncurrent
 * version for `noncurrentDays` before it is gone for good.
 */
export function s3LifecycleRules(
    prefix: string,
    databases: readonly RetentionInput[],
    noncurrentDays: number,
): S3LifecycleRule[] {
    return databases.map((db) => ({
        id: `expire-${db.name}`,
        status: "Enabled",
        filter: { prefix: databasePrefix(prefix, db.name) },
        expiration: { days: db.retentionDays },
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

/** Azure: the same plan as S3; Azure prefixes include the container name. */
export function azureManagementRules(
    container: string,
    prefix: string,
    databases: readonly RetentionInput[],
    noncurrentDays: number,
): AzureManagementRule[] {
    const names = databases.map((d) => azureRuleName(d.name));
    const clash = names.find((n, i) => names.indexOf(n) !== i);
    if (clash) {
        throw new Error(`two databases map to the Azure lifecycle rule name "${clash}": rename one of them`);
    }
    return databases.map((db) => ({
        name: azureRuleName(db.name),
        enabled: true,
        type: "Lifecycle",
        definition: {
            filters: { blobTypes: ["blockBlob"], prefixMatch: [`${container}/${databasePrefix(prefix, db.name)}`] },
            actions: {
                baseBlob: { delete: { daysAfterModificationGreaterThan: db.retentionDays } },
                version: { delete: { daysAfterCreationGreaterThan: noncurrentDays } },
            },
        },
    }));
}
