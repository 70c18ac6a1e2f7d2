/**
 * Finding a backup and bringing it here intact: used by verify and restore. The object is
 * downloaded once, hashed on the way, and compared with its manifest before anything uses it.
 */
import { execFile } from "child_process";
import { createHash } from "crypto";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { Transform } from "stream";
import { pipeline } from "stream/promises";
import { promisify } from "util";
import { BackupEntry, listBackups } from "./catalog";
import { JobError } from "./log";
import { Manifest, readManifest } from "./manifest";
import { Target } from "./targets";

export interface Located {
    target: Target;
    entry: BackupEntry;
    manifest: Manifest;
}

/** The chosen target: `--from`, else the first configured (local, then s3, then azure). */
export function pickTarget(targets: Target[], from: string | undefined): Target {
    if (targets.length === 0) {
        throw new JobError("no backup target configured", 2);
    }
    if (from === undefined) {
        return targets[0];
    }
    const t = targets.find((x) => x.kind === from);
    if (!t) {
        throw new JobError(`--from ${from}: that target is not configured (configured: ${targets.map((x) => x.kind).join(", ")})`, 2);
    }
    return t;
}

/** `latest` = newest complete backup; a name must exist and be complete (have its manifest). */
export async function locate(target: Target, database: string, backup: string): Promise<Located> {
    const entries = await listBackups(target, database).catch((e) => {
        throw new JobError(`cannot list ${target.location}: ${(e as Error).message}`);
    });
    let entry: BackupEntry | undefined;
    if (backup === "latest") {
        entry = entries.find((e) => e.complete);
        if (!entry) {
            throw new JobError(`no complete backup of ${database} on ${target.kind} (${target.location})`);
        }
    } else {
        const name = backup.includes("/") ? backup : `${database}/${backup}`;
        entry = entries.find((e) => e.key === name);
        if (!entry) {
            throw new JobError(`backup ${name} not found on ${target.kind}`);
        }
        if (!entry.complete) {
            throw new JobError(`backup ${name} on ${target.kind} has no manifest: it is incomplete and cannot be trusted`);
        }
    }
    if (entry.size === 0) {
        throw new JobError(`backup ${entry.key} on ${target.kind} is empty`);
    }
    const manifest = await readManifest(target, entry.key).catch((e) => {
        throw new JobError(`manifest of ${entry!.key} on ${target.kind} is unreadable: ${(e as Error).message}`);
    });
    return { target, entry, manifest };
}

export interface Fetched {
    /** What pg_restore reads: the dump file, or the extracted directory of a directory-format dump. */
    input: string;
    sha256: string;
    size: number;
    /** Removes everything downloaded. */
    cleanup(): void;
}

const execFileP = promisify(execFile);

/** Downloads, hashes and checks against the manifest; throws naming the mismatch. */
export async function fetchVerified(located: Located, workDir: string | undefined): Promise<Fetched> {
    const { target, entry, manifest } = located;
    const dir = mkdtempSync(path.join(workDir ?? os.tmpdir(), "kx-fetch-"));
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    try {
        const file = path.join(dir, path.basename(entry.key));
        const hash = createHash("sha256");
        let size = 0;
        const tap = new Transform({
            transform(chunk: Buffer, _enc, cb) {
                hash.update(chunk);
                size += chunk.length;
                cb(null, chunk);
            },
        });
        await pipeline(await target.get(entry.key), tap, createWriteStream(file));
        const sha256 = hash.digest("hex");
        if (size !== manifest.size) {
            throw new JobError(`size mismatch for ${entry.key} on ${target.kind}: stored ${size} bytes, manifest says ${manifest.size} (truncated or replaced)`);
        }
        if (sha256 !== manifest.sha256) {
            throw new JobError(`checksum mismatch for ${entry.key} on ${target.kind}: sha256 ${sha256} ≠ manifest ${manifest.sha256} (corrupted)`);
        }
        let input = file;
        if (manifest.container === "tar") {
            input = path.join(dir, "dump");
            mkdirSync(input);
            await execFileP("tar", ["-xf", file, "-C", input, "--no-same-owner"]);
            rmSync(file);
        }
        return { input, sha256, size, cleanup };
    } catch (e) {
        cleanup();
        throw e instanceof JobError ? e : new JobError(`cannot download ${entry.key} from ${target.kind}: ${(e as Error).message}`);
    }
}
