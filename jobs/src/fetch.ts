/**
 * Finding a backup and bringing it here intact: used by verify and restore. The object is
 * downloaded once, hashed on the way, and compared with its manifest before anything uses it.
 */
import { execFile } from "child_process";
import { createHash } from "crypto";
import { createWriteStream, mkdirSync, rmSync } from "fs";
import * as path from "path";
import { Transform } from "stream";
import { pipeline } from "stream/promises";
import { promisify } from "util";
import { BackupEntry, fromTheFuture, futureNote, listBackups } from "./catalog";
import { JobError, Logger } from "./log";
import { checkSignature, Manifest, readManifestRaw } from "./manifest";
import { ArtifactFamily, isSafetyKey, manifestKey } from "./naming";
import { ScratchSpaceError, scratchDir } from "./scratch";
import { onStop } from "./shutdown";
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

export interface LocateOptions {
    /** BACKUP_SIGNING_KEY: with it, an unsigned or mis-signed manifest is refused. */
    signingKey?: string;
    /** Told once when manifests are read without a signing key. */
    log?: Logger;
    /**
     * `latest` may be an anomalous backup (verify: it is restorable and worth testing). Without
     * it (restore), an anomalous newest backup is refused, naming it and the newest good one:
     * restoring a database that just lost most of a table must be asked for by name.
     */
    allowAnomalous?: boolean;
    /** What is looked for: a database dump (restore, verify; the default) or an archive (restore-archive). */
    family?: ArtifactFamily;
    /** The clock `latest` is judged by (a backup dated beyond it is never `latest`). Default: now. */
    now?: Date;
}

let warnedUnsigned = false;

/** A manifest that does not verify with the signing key: refused when named, skipped by `latest`. */
class SignatureRefusal extends JobError {}

/**
 * Finds a backup and reads its manifest. `latest` = the newest complete *full* backup (never a
 * partial one, never a safety dump); a name must exist and be complete (have its manifest), and
 * may name any backup, partial and safety dumps included (`safety/<name>`): the caller decides
 * what it may be used for. With a signing key, the manifest's signature must be valid.
 */
export async function locate(target: Target, database: string, backup: string, o: LocateOptions = {}): Promise<Located> {
    const family = o.family ?? "dump";
    const all = await listBackups(target, database).catch((e) => {
        throw new JobError(`cannot list ${target.location}: ${(e as Error).message}`);
    });
    // An archive sharing a database's folder (archive --name kong) is never a database's backup, nor the reverse.
    const entries = all.filter((e) => e.family === family);
    const read = async (entry: BackupEntry): Promise<Manifest> => {
        const { raw, manifest } = await readManifestRaw(target, entry.key).catch((e) => {
            throw new JobError(`manifest of ${entry.key} on ${target.kind} is unreadable: ${(e as Error).message}`);
        });
        if (o.signingKey) {
            const check = checkSignature(raw as Parameters<typeof checkSignature>[0], o.signingKey);
            if (check !== "valid") {
                // The upgrade path: every backup written before the key was set is unsigned. Say so,
                // and how to use one deliberately, rather than only "forged".
                throw new SignatureRefusal(
                    `${manifestKey(entry.key)} on ${target.kind} is ${check === "unsigned" ? "not signed" : "signed with another key or altered"}: ` +
                        "refusing to use it (BACKUP_SIGNING_KEY is set; a backup whose manifest does not verify may have been forged). " +
                        (check === "unsigned"
                            ? "Backups written before BACKUP_SIGNING_KEY was set are unsigned too: to use one you trust, run this command once without BACKUP_SIGNING_KEY"
                            : "A backup signed before a key rotation verifies with the key it was signed with: run this command once with that key"),
                );
            }
        } else if (!warnedUnsigned) {
            warnedUnsigned = true;
            o.log?.warn("BACKUP_SIGNING_KEY is not set: manifests are not checked for forgery", { event: "manifest.unsigned" });
        }
        if (manifest.database !== database || manifest.key !== entry.key) {
            throw new JobError(`manifest of ${entry.key} on ${target.kind} describes ${manifest.database}/${manifest.key}: refusing a manifest that does not match its backup`);
        }
        return manifest;
    };
    let entry: BackupEntry | undefined;
    let manifest: Manifest | undefined;
    if (backup === "latest") {
        const now = o.now ?? new Date();
        const future: string[] = [];
        const untrusted: string[] = [];
        for (const e of entries) {
            if (!e.complete || isSafetyKey(e.key)) {
                continue;
            }
            if (fromTheFuture(e, now)) {
                future.push(e.key);
                o.log?.warn(`${e.key} on ${target.kind} is ${futureNote(e, now)}: \`latest\` skips it (name it with --backup to use it)`, { event: "backup.future", key: e.key });
                continue;
            }
            let m: Manifest;
            try {
                m = await read(e);
            } catch (err) {
                if (!(err instanceof SignatureRefusal)) {
                    throw err;
                }
                // As list, prune and status treat it: never used, and never in the way. An unsigned
                // manual backup from a laptop without the key (or a forged one) would otherwise
                // block every restore and verify of `latest` until a newer signed backup came.
                untrusted.push(err.message);
                o.log?.warn(`\`latest\` skips ${err.message}`, { event: "backup.untrusted", key: e.key });
                continue;
            }
            if (m.scope !== "full" || m.purpose === "safety") {
                continue;
            }
            if (m.anomaly && !o.allowAnomalous) {
                const good = await findGood(entries.slice(entries.indexOf(e) + 1), read);
                throw new JobError(
                    `the newest full backup of ${database} on ${target.kind}, ${e.key}, is anomalous (${m.anomaly.reasons.join("; ")}): ` +
                        `name it with --backup ${e.key.slice(e.key.indexOf("/") + 1)} to restore it anyway` +
                        (good ? `, or restore the newest good one: --backup ${good.slice(good.indexOf("/") + 1)}` : ""),
                    2,
                );
            }
            entry = e;
            manifest = m;
            break;
        }
        if (!entry || !manifest) {
            throw new JobError(`no complete full backup of ${database} on ${target.kind} (${target.location})` +
                (future.length ? `; ${future.length} dated ahead of this clock (${future[0]}): check the clock, or name one with --backup` : "") +
                (untrusted.length ? `; ${untrusted.length} skipped as their manifests do not verify, the newest: ${untrusted[0]}` : ""));
        }
    } else {
        const name = backup.includes("/") && backup.startsWith(`${database}/`) ? backup : `${database}/${backup}`;
        entry = entries.find((e) => e.key === name);
        if (!entry && all.some((e) => e.key === name)) {
            throw new JobError(family === "dump"
                ? `${name} is an archive of files, not a database backup: use restore-archive --name ${database}`
                : `${name} is a database backup, not an archive: use restore --database ${database}`, 2);
        }
        if (!entry) {
            throw new JobError(`backup ${name} not found on ${target.kind}`);
        }
        if (!entry.complete) {
            throw new JobError(`backup ${name} on ${target.kind} has no manifest: it is incomplete or was not written by kx-backup (see kx-backup adopt)`);
        }
        manifest = await read(entry);
    }
    if (entry.size === 0) {
        throw new JobError(`backup ${entry.key} on ${target.kind} is empty`);
    }
    return { target, entry, manifest };
}

async function findGood(entries: BackupEntry[], read: (e: BackupEntry) => Promise<Manifest>): Promise<string | undefined> {
    for (const e of entries) {
        if (!e.complete || isSafetyKey(e.key)) {
            continue;
        }
        const m = await read(e).catch(() => undefined);
        if (m && m.scope === "full" && m.purpose !== "safety" && !m.anomaly) {
            return e.key;
        }
    }
    return undefined;
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

/**
 * Downloads, hashes and checks against the manifest; throws naming the mismatch.
 *
 * A local target's file is copied too, though reading it in place would save the copy (about
 * 0.05 s per 200 MB, and scratch space the size of the backup). Tried and withdrawn: pinning it
 * open and checking after the restore that its size, times and links had not changed does not
 * prove that pg_restore read the bytes that were hashed. A process with write access can change
 * a page through a shared mapping (MAP_SHARED) without touching ctime or mtime until writeback,
 * and on tmpfs at all: verify then passed a backup whose stored bytes do not restore (review
 * r-inplace, 2026-11-27). Only a private copy is immune to writes made while it is used.
 */
export async function fetchVerified(located: Located, workDir: string | undefined): Promise<Fetched> {
    const { target, entry, manifest } = located;
    const dir = scratchDir(workDir, "kx-fetch-");
    // Removed on a stop too (SIGTERM mid-download): a download never outlives the job.
    const release = onStop(`remove the download of ${entry.key}`, () => rmSync(dir, { recursive: true, force: true }));
    const cleanup = () => {
        rmSync(dir, { recursive: true, force: true });
        release();
    };
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
        // Writing the download here failing (disk full) is this side's problem, not the copy's. A
        // read that fails is passed on to the file too (pipeline destroys it with that error):
        // only a file error that came first is this side's.
        const source = await target.get(entry.key);
        const sink = createWriteStream(file);
        let readFailed = false;
        let writeFailed: Error | undefined;
        source.once("error", () => (readFailed = true));
        sink.once("error", (e) => {
            if (!readFailed) {
                writeFailed = e;
            }
        });
        await pipeline(source, tap, sink).catch((e: Error) => {
            throw writeFailed ? new ScratchSpaceError(`cannot write the download of ${entry.key} to ${dir}${workDir ? " (BACKUP_WORK_DIR)" : ""}: ${writeFailed.message}`) : e;
        });
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
