/**
 * What an Azure container still holds for names that no longer have a current blob. Two store
 * settings, two restores (Azure's documented ones): with versioning, a deleted blob's data is
 * its previous versions — copy the newest over the base blob; without it, soft delete keeps the
 * blob itself for the retention period — Undelete Blob. Pure.
 */
import type { BlobItem } from "@azure/storage-blob";
import { HiddenObject } from "./target";

export interface AzureHiddenHandle {
    /** Undelete Blob first (soft-deleted base blob or soft-deleted versions). */
    undelete: boolean;
    /** The version to copy over the base blob afterwards (versioning on). */
    versionId?: string;
}

type Item = Pick<BlobItem, "name" | "deleted" | "versionId" | "isCurrentVersion" | "snapshot"> & {
    properties: Pick<BlobItem["properties"], "contentLength" | "lastModified" | "deletedOn" | "remainingRetentionDays">;
};

function addDays(d: Date | undefined, days: number | undefined): Date | undefined {
    return d && days !== undefined ? new Date(d.getTime() + days * 86_400_000) : undefined;
}

export function hiddenFromBlobItems(items: readonly Item[]): HiddenObject[] {
    const byName = new Map<string, Item[]>();
    for (const i of items) {
        if (!i.snapshot) {
            byName.set(i.name, [...(byName.get(i.name) ?? []), i]);
        }
    }
    const hidden: HiddenObject[] = [];
    for (const [name, list] of byName) {
        const current = list.some((i) => !i.deleted && (i.versionId === undefined || i.isCurrentVersion === true));
        if (current) {
            continue;
        }
        // Version ids are timestamps: the greatest is the newest.
        const versions = list.filter((i) => i.versionId !== undefined).sort((a, b) => (a.versionId! < b.versionId! ? 1 : -1));
        const live = versions.find((i) => !i.deleted);
        const softDeleted = list.find((i) => i.deleted);
        if (live) {
            hidden.push({
                key: name,
                size: live.properties.contentLength ?? 0,
                lastModified: live.properties.lastModified,
                how: "previous version",
                handle: { undelete: false, versionId: live.versionId } satisfies AzureHiddenHandle,
            });
        } else if (softDeleted) {
            // With versioning the soft-deleted items are versions: undelete them, then promote the newest.
            const newest = versions[0];
            hidden.push({
                key: name,
                size: (newest ?? softDeleted).properties.contentLength ?? 0,
                lastModified: (newest ?? softDeleted).properties.lastModified,
                how: "soft-deleted",
                hiddenAt: softDeleted.properties.deletedOn,
                keptUntil: addDays(new Date(), softDeleted.properties.remainingRetentionDays),
                handle: { undelete: true, versionId: newest?.versionId } satisfies AzureHiddenHandle,
            });
        }
    }
    return hidden;
}
