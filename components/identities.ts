/**
 * Who may touch which folder of the backup stores. The configuration export holds every Secret of
 * the namespace, so it gets its own ServiceAccount, IAM role and Azure identity, scoped to its own
 * folder; the database and volume jobs get theirs, scoped to their folders and explicitly denied
 * the export's. Pure: the storage components turn this into IAM and Azure role conditions.
 */
import { CONFIG_ARCHIVE_NAME, serviceAccountNames, StackConfig } from "./config";

export type IdentityKey = "jobs" | "config";

export interface JobIdentity {
    readonly key: IdentityKey;
    /** The ServiceAccount its pods run as (the subject its cloud identities trust). */
    readonly serviceAccount: string;
    /** Folders under the target prefix it reads and writes. */
    readonly folders: readonly string[];
    /** Folders it must never read, denied explicitly (not only left out). */
    readonly deniedFolders: readonly string[];
}

export function jobIdentities(c: StackConfig): JobIdentity[] {
    const sa = serviceAccountNames(c.namePrefix);
    const jobs: JobIdentity = {
        key: "jobs",
        serviceAccount: sa.jobs,
        folders: [...c.databases.map((d) => d.name), ...c.volumes.map((v) => v.name)],
        deniedFolders: c.configBackup ? [CONFIG_ARCHIVE_NAME] : [],
    };
    if (!c.configBackup) {
        return [jobs];
    }
    return [jobs, { key: "config", serviceAccount: sa.config, folders: [CONFIG_ARCHIVE_NAME], deniedFolders: [] }];
}
