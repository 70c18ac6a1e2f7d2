/**
 * What a versioned bucket still holds behind delete markers. A plain DELETE on a versioned bucket
 * writes a delete marker: the object disappears from listings, every version remains. S3's own
 * undelete is removing the markers above the newest version ("To undelete an object, you must
 * delete the delete marker"); nothing is copied and the version keeps its id and lock.
 */
import { ListObjectVersionsCommand, S3Client } from "@aws-sdk/client-s3";
import { HiddenObject } from "./target";

export interface VersionEntry {
    key: string;
    versionId: string;
    isDeleteMarker: boolean;
    isLatest: boolean;
    lastModified: Date;
    size: number;
}

export interface S3HiddenHandle {
    /** The version that becomes current again. */
    versionId: string;
    /** The delete markers newer than it, newest first: removing them all makes it current. */
    markerVersionIds: string[];
}

/** Every version and delete marker under a prefix (needs s3:ListBucketVersions). */
export async function listAllVersions(client: S3Client, bucket: string, prefix: string): Promise<VersionEntry[]> {
    const out: VersionEntry[] = [];
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    do {
        const page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, VersionIdMarker }));
        for (const v of page.Versions ?? []) {
            out.push({ key: v.Key!, versionId: v.VersionId ?? "null", isDeleteMarker: false, isLatest: Boolean(v.IsLatest), lastModified: v.LastModified ?? new Date(0), size: v.Size ?? 0 });
        }
        for (const m of page.DeleteMarkers ?? []) {
            out.push({ key: m.Key!, versionId: m.VersionId ?? "null", isDeleteMarker: true, isLatest: Boolean(m.IsLatest), lastModified: m.LastModified ?? new Date(0), size: 0 });
        }
        const more = page.IsTruncated;
        if (more && !page.NextKeyMarker) {
            throw new Error(`listing the versions of s3://${bucket}/${prefix} stopped half-way: the server says there is more but gives no key marker`);
        }
        KeyMarker = more ? page.NextKeyMarker : undefined;
        VersionIdMarker = more ? page.NextVersionIdMarker : undefined;
    } while (KeyMarker);
    return out;
}

/**
 * Keys whose current version is a delete marker and that still have a data version: each with
 * the newest data version and the markers above it. Pure.
 */
export function hiddenFromVersions(entries: readonly VersionEntry[]): HiddenObject[] {
    const byKey = new Map<string, VersionEntry[]>();
    for (const e of entries) {
        byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
    }
    const hidden: HiddenObject[] = [];
    for (const [key, list] of byKey) {
        // Newest first; the latest flag breaks ties within one second.
        const sorted = [...list].sort((a, b) => b.lastModified.getTime() - a.lastModified.getTime() || Number(b.isLatest) - Number(a.isLatest));
        if (!sorted[0].isDeleteMarker) {
            continue;
        }
        const newestData = sorted.findIndex((e) => !e.isDeleteMarker);
        if (newestData < 0) {
            continue;
        }
        const version = sorted[newestData];
        const markers = sorted.slice(0, newestData);
        const handle: S3HiddenHandle = { versionId: version.versionId, markerVersionIds: markers.map((m) => m.versionId) };
        hidden.push({ key, size: version.size, lastModified: version.lastModified, how: "delete marker", hiddenAt: markers[0].lastModified, handle });
    }
    return hidden;
}
