/**
 * `kx-backup restore-archive`: an archive back into a directory, checked before and cleaned up
 * after. Refused before anything is extracted: a path outside the directory (absolute, `../`, or
 * through a symlink), a device node, a FIFO. setuid/setgid/sticky bits are stripped (with a
 * warning); ownership is kept only with --same-owner (else files belong to whoever restores).
 * It extracts into a staging directory inside the target and moves the entries into place only
 * when tar succeeded: a failed extraction leaves the target as it was.
 */
import { createReadStream, promises as fs } from "fs";
import * as path from "path";
import { createGunzip } from "zlib";
import { fetchVerified, locate } from "../fetch";
import { JobError, Logger } from "../log";
import { MANIFEST_KIND_ARCHIVE } from "../manifest";
import { onStop } from "../shutdown";
import { parseTarEntries, TarEntry, TarHeaderReader } from "../tar";
import { Target } from "../targets";
import { startTool } from "./tools";

export { parseTarEntries };
export type { TarEntry };

/** Why an archive is unsafe to extract into a directory, or undefined. Pure. */
export function unsafeEntry(entries: readonly TarEntry[]): string | undefined {
    const symlinks = new Set<string>();
    const norm = (p: string) => path.posix.normalize(p.replace(/^\.\//, "")).replace(/\/$/, "");
    const escapes = (p: string) => p.startsWith("/") || norm(p) === ".." || norm(p).startsWith("../");
    for (const e of entries) {
        const name = norm(e.name);
        if (escapes(e.name)) {
            return `entry ${JSON.stringify(e.name)} escapes the target directory`;
        }
        for (const link of symlinks) {
            if (name.startsWith(`${link}/`)) {
                return `entry ${JSON.stringify(e.name)} would be written through the symlink ${link}`;
            }
        }
        if (e.type === "char-device" || e.type === "block-device" || e.type === "fifo") {
            return `entry ${JSON.stringify(e.name)} is a ${e.type === "fifo" ? "FIFO" : e.type.replace("-", " ")}: archives of files never hold one`;
        }
        if (e.type === "hardlink" && escapes(e.linkname)) {
            return `hard link ${JSON.stringify(e.name)} points outside the target directory`;
        }
        if (e.type === "symlink") {
            symlinks.add(name);
        }
    }
    return undefined;
}

async function readEntries(file: string): Promise<TarEntry[]> {
    const reader = new TarHeaderReader();
    for await (const chunk of createReadStream(file).pipe(createGunzip())) {
        reader.push(chunk as Buffer);
    }
    return reader.entries;
}

/** Entries with setuid, setgid or sticky bits (stripped on extraction). Pure. */
export function specialBits(entries: readonly TarEntry[]): TarEntry[] {
    return entries.filter((e) => (e.type === "file" || e.type === "directory") && (e.mode & 0o7000) !== 0);
}

/** GNU tar's arguments for extracting into `dir`. Pure. */
export function tarExtractArgs(file: string, dir: string, sameOwner: boolean): string[] {
    return ["--extract", "--gzip", "--file", file, "--directory", dir, "--preserve-permissions", sameOwner ? "--same-owner" : "--no-same-owner", "--no-overwrite-dir"];
}

/** Moves everything in `from` into `to`, merging directories; what exists in `to` is replaced (--force). */
async function moveInto(from: string, to: string): Promise<void> {
    for (const name of await fs.readdir(from)) {
        const src = path.join(from, name);
        const dst = path.join(to, name);
        const [s, d] = await Promise.all([fs.lstat(src), fs.lstat(dst).catch(() => undefined)]);
        if (d?.isDirectory() && s.isDirectory()) {
            await moveInto(src, dst);
            await fs.rmdir(src);
            continue;
        }
        if (d) {
            await fs.rm(dst, { recursive: true, force: true });
        }
        await fs.rename(src, dst);
    }
}

export interface RestoreArchiveOptions {
    name: string;
    backup: string;
    into: string;
    force: boolean;
    /** Keep the archive's file owners (uid/gid): only meaningful as root. */
    sameOwner: boolean;
    target: Target;
    workDir?: string;
    signingKey?: string;
}

export async function runRestoreArchive(o: RestoreArchiveOptions, log: Logger): Promise<{ key: string; files: number }> {
    const located = await locate(o.target, o.name, o.backup, { signingKey: o.signingKey, log, family: "archive" });
    if (located.manifest.kind !== MANIFEST_KIND_ARCHIVE) {
        throw new JobError(`${located.entry.key} is not an archive: use restore for database dumps`, 2);
    }
    const into = path.resolve(o.into);
    const existing = await fs.readdir(into).catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") {
            return undefined;
        }
        throw new JobError(`cannot read ${into}: ${e.message}`, 2);
    });
    if (existing && existing.length > 0 && !o.force) {
        throw new JobError(`${into} is not empty (${existing.length} entries): add --force to extract over it`, 2);
    }
    const fetched = await fetchVerified(located, o.workDir);
    let created: string | undefined;
    let staging: string | undefined;
    const undo = async () => {
        if (staging) {
            await fs.rm(staging, { recursive: true, force: true });
        }
        if (created) {
            await fs.rm(created, { recursive: true, force: true });
        }
    };
    const releaseUndo = onStop(`remove what was extracted into ${into}`, undo);
    try {
        const entries = await readEntries(fetched.input);
        const unsafe = unsafeEntry(entries);
        if (unsafe) {
            throw new JobError(`refusing to extract ${located.entry.key}: ${unsafe}; nothing was extracted`);
        }
        created = existing ? undefined : await fs.mkdir(into, { recursive: true });
        staging = await fs.mkdtemp(path.join(into, ".kx-restore-archive-"));
        const tar = startTool("PATH", "tar", tarExtractArgs(fetched.input, staging, o.sameOwner), undefined, `extracting ${located.entry.key}`);
        await tar.exited;
        const special = specialBits(entries);
        for (const e of special) {
            const file = path.join(staging, e.name);
            if (!(await fs.lstat(file)).isSymbolicLink()) {
                await fs.chmod(file, e.mode & 0o777);
            }
        }
        if (special.length > 0) {
            log.warn(`stripped setuid/setgid/sticky bits from ${special.length} entr${special.length === 1 ? "y" : "ies"}: ${special.slice(0, 5).map((e) => e.name).join(", ")}`, { event: "restore-archive.special-bits", entries: special.length });
        }
        await moveInto(staging, into);
        await fs.rm(staging, { recursive: true, force: true });
        staging = undefined;
        created = undefined;
        const files = entries.filter((e) => e.type === "file").length;
        log.info(`restore-archive ${located.entry.key} → ${into} ok: ${files} files, sha256 checked`, { event: "restore-archive.done", key: located.entry.key, files });
        return { key: located.entry.key, files };
    } catch (e) {
        await undo();
        const err = e instanceof JobError ? e : new JobError(`restore-archive of ${located.entry.key} failed: ${(e as Error).message}`);
        throw new JobError(`${err.message}${/nothing was extracted/.test(err.message) ? "" : `; ${into} was left as it was`}`, err.exitCode);
    } finally {
        releaseUndo();
        fetched.cleanup();
    }
}
