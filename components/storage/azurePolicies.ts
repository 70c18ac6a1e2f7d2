/**
 * Azure role-assignment conditions (ABAC, condition version 2.0) that scope Storage Blob Data
 * Contributor on the container to an identity's own folders: reads, writes and deletes only on
 * blob paths under them, listings only with a prefix under them. Pure, so tests read the text.
 */
import { databasePrefix } from "../../jobs/src/naming";

const BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs";

/** The condition for an identity whose folders (under `prefix`) are `folders`. */
export function blobFoldersCondition(prefix: string, folders: readonly string[]): string {
    if (folders.length === 0) {
        throw new Error("blobFoldersCondition: an identity needs at least one folder");
    }
    const keys = folders.map((f) => databasePrefix(prefix, f));
    const any = (attribute: string) => keys.map((k) => `${attribute} StringStartsWith '${k}'`).join(" OR ");
    return [
        "(",
        " (",
        `  !(ActionMatches{'${BLOBS}/delete'})`,
        `  AND !(ActionMatches{'${BLOBS}/read'} AND NOT SubOperationMatches{'Blob.List'})`,
        `  AND !(ActionMatches{'${BLOBS}/write'})`,
        `  AND !(ActionMatches{'${BLOBS}/add/action'})`,
        `  AND !(ActionMatches{'${BLOBS}/move/action'})`,
        " )",
        " OR",
        ` (${any(`@Resource[${BLOBS}:path]`)})`,
        ")",
        "AND",
        "(",
        ` (!(ActionMatches{'${BLOBS}/read'} AND SubOperationMatches{'Blob.List'}))`,
        " OR",
        ` (${any(`@Request[${BLOBS}:prefix]`)})`,
        ")",
    ].join("\n");
}
