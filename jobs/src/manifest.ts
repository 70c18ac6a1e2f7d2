/**
 * The commit marker written beside a dump once every target holds it. A dump without its
 * manifest is incomplete: list, prune and restore treat it so.
 */
import { Target, readText } from "./targets";
import { manifestKey } from "./naming";

export const MANIFEST_KIND = "kx-backup/postgres";
export const MANIFEST_KIND_ARCHIVE = "kx-backup/archive";

export interface Manifest {
    kind: typeof MANIFEST_KIND | typeof MANIFEST_KIND_ARCHIVE;
    manifestVersion: 1;
    database: string;
    /** Key relative to the target root. */
    key: string;
    format: "custom" | "directory" | "plain" | "tar.gz";
    /** What the artifact is: a pg_dump stream, a tar of a directory-format dump, or an archive. */
    container: "pg_dump" | "tar" | "tar.gz";
    options: { schemaOnly: boolean; dataOnly: boolean; tables: string[]; jobs: number };
    startedAt: string;
    finishedAt: string;
    durationMs: number;
    size: number;
    sha256: string;
    pgDump: { version: string };
    server: { version: string; versionNum: number };
    /** Exact row counts per table from the dump's own snapshot; empty for schema-only dumps. */
    tables: Record<string, number>;
    /** Archives only: what the tree held, and its content hash (for --if-changed). */
    archive?: { files: number; totalBytes: number; contentHash: string };
    /** Every target that holds this backup. */
    targets: string[];
}

export async function writeManifest(target: Target, manifest: Manifest): Promise<void> {
    await target.putSmall(manifestKey(manifest.key), `${JSON.stringify(manifest, null, 2)}\n`);
}

export async function readManifest(target: Target, backupKey: string): Promise<Manifest> {
    const text = await readText(target, manifestKey(backupKey));
    const m = JSON.parse(text) as Manifest;
    if ((m.kind !== MANIFEST_KIND && m.kind !== MANIFEST_KIND_ARCHIVE) || typeof m.sha256 !== "string" || typeof m.size !== "number") {
        throw new Error(`${manifestKey(backupKey)} is not a kx-backup manifest`);
    }
    return m;
}
