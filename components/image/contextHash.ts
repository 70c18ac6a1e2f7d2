/**
 * A content hash of what the job image is built from, for its tag: a change to any input gives a
 * new tag, an unchanged tree the same one. So a tag is never pushed twice with different content
 * (immutable-tag registries refuse that) and an unchanged stack pushes nothing.
 */
import { createHash } from "crypto";
import { readdirSync, readFileSync, statSync } from "fs";
import * as path from "path";

/** What jobs/Dockerfile copies from the build context (the Dockerfile and pins live in jobs/). */
export const IMAGE_INPUTS = ["package.json", "package-lock.json", "tsconfig.json", "jobs"];

function files(root: string, rel: string): string[] {
    const full = path.join(root, rel);
    if (!statSync(full).isDirectory()) {
        return [rel];
    }
    return readdirSync(full).sort().flatMap((name) => files(root, path.posix.join(rel, name)));
}

/** sha256 (hex) over every input file's path and content, in a fixed order. */
export function contextHash(root: string, inputs: readonly string[] = IMAGE_INPUTS): string {
    const h = createHash("sha256");
    for (const rel of inputs.flatMap((i) => files(root, i)).sort()) {
        h.update(rel).update("\0").update(readFileSync(path.join(root, rel))).update("\0");
    }
    return h.digest("hex");
}

/** The pushed tag: the configured version label and the first 12 hex digits of the content hash. */
export function contentTag(version: string, hash: string): string {
    return `${version}-${hash.slice(0, 12)}`;
}
