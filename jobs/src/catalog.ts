/**
 * What a target holds, read back into backups: each dump paired with its manifest (complete) or
 * without one (incomplete), newest first. Pure grouping over a listing, so it is tested without
 * storage.
 */
import { MANIFEST_SUFFIX, parseBackupName } from "./naming";
import { PARTIAL_SUFFIX } from "./targets/local";
import { StoredObject, Target } from "./targets";

export const VERIFY_SUFFIX = ".verify.json";

export interface BackupEntry {
    database: string;
    /** Key of the artifact (for a leftover partial file: the partial file). */
    key: string;
    takenAt: Date;
    size: number;
    complete: boolean;
    verified: boolean;
    /** Every object that belongs to this backup: artifact, manifest, verify record. */
    objects: string[];
}

export function groupBackups(objects: readonly StoredObject[]): BackupEntry[] {
    const keys = new Set(objects.map((o) => o.key));
    const entries: BackupEntry[] = [];
    for (const o of objects) {
        if (o.key.endsWith(MANIFEST_SUFFIX) || o.key.endsWith(VERIFY_SUFFIX)) {
            continue;
        }
        const partial = o.key.endsWith(PARTIAL_SUFFIX);
        const artifact = partial ? o.key.slice(0, -PARTIAL_SUFFIX.length) : o.key;
        const parsed = parseBackupName(artifact);
        if (!parsed) {
            continue;
        }
        const manifest = `${artifact}${MANIFEST_SUFFIX}`;
        const verify = `${artifact}${VERIFY_SUFFIX}`;
        const complete = !partial && keys.has(manifest);
        entries.push({
            database: parsed.database,
            key: o.key,
            takenAt: parsed.takenAt,
            size: o.size,
            complete,
            verified: complete && keys.has(verify),
            objects: [o.key, ...(partial ? [] : [manifest, verify].filter((k) => keys.has(k)))],
        });
    }
    // Manifests whose artifact is gone (a prune interrupted between deletes) are leftovers too.
    for (const o of objects) {
        if (!o.key.endsWith(MANIFEST_SUFFIX)) {
            continue;
        }
        const artifact = o.key.slice(0, -MANIFEST_SUFFIX.length);
        const parsed = parseBackupName(artifact);
        if (parsed && !keys.has(artifact)) {
            entries.push({ database: parsed.database, key: o.key, takenAt: parsed.takenAt, size: o.size, complete: false, verified: false, objects: [o.key] });
        }
    }
    return entries.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || a.key.localeCompare(b.key));
}

/** Backups of one database (or all, grouped by folder) on a target. */
export async function listBackups(target: Target, database?: string): Promise<BackupEntry[]> {
    const objects = await target.list(database ? `${database}/` : "");
    return groupBackups(objects).filter((e) => database === undefined || e.database === database);
}
