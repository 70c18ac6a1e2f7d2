/**
 * What a target holds, read back into backups, newest first. Two steps:
 *   1. `groupBackups` (pure, from a listing): each artifact with what belongs to it, and what the
 *      names alone tell — kx-backup's own in-progress leftovers (local `.partial`, or an
 *      in-progress marker), complete backups (a manifest beside them), safety dumps (their
 *      folder), and `foreign` dumps: named like a backup but written by someone else. A foreign
 *      dump is never deleted: only what kx-backup wrote is.
 *   2. `describeBackups` reads the manifests of complete backups: a partial backup (schema-only,
 *      data-only, selected tables) is never `latest` and never counts toward keep-min; anomalous
 *      ones are flagged; a manifest that cannot be read or (with a signing key) does not verify
 *      makes the backup `unreadable`: kept, listed, never used.
 */
import { checkSignature, Manifest, MANIFEST_KIND_ARCHIVE, parseManifest, SignatureCheck } from "./manifest";
import { ArtifactFamily, artifactFamily, GLOBALS_SUFFIX, IN_PROGRESS_SUFFIX, isSafetyKey, MANIFEST_SUFFIX, parseBackupName } from "./naming";
import { PARTIAL_SUFFIX } from "./targets/local";
import { readText, StoredObject, Target } from "./targets";

export const VERIFY_SUFFIX = ".verify.json";

/**
 * - `full`: a complete backup of the whole database (scheduled, manual or adopted);
 * - `partial`: complete, but schema-only, data-only or selected tables;
 * - `safety`: a restore's safety dump (`<db>/safety/`);
 * - `foreign`: named like a backup, no manifest, no kx-backup mark: someone else's, never deleted;
 * - `incomplete`: kx-backup's own unfinished or abandoned upload (`.partial`, in-progress marker);
 * - `orphan`: a manifest (or marker) whose artifact is gone: an interrupted prune's leftover;
 * - `unreadable`: a manifest that cannot be read or does not verify: never used, never deleted.
 */
export type EntryKind = "full" | "partial" | "safety" | "foreign" | "incomplete" | "orphan" | "unreadable";

export interface BackupEntry {
    database: string;
    /** A database dump or an archive of files (by extension): the two never count for each other. */
    family: ArtifactFamily;
    /** Key of the artifact (for leftovers: the first object of theirs). */
    key: string;
    takenAt: Date;
    size: number;
    kind: EntryKind;
    /** A manifest is present (and, once described, readable). */
    complete: boolean;
    verified: boolean;
    /** Flagged by the anomaly guard (manifest.anomaly). */
    anomalous: boolean;
    /** Its verify record's text, as describeBackups read and checked it (status judges this very text, never a second read). */
    verifyRecord?: string;
    /** Every object that belongs to this backup: artifact, manifest, verify record, globals, marker. */
    objects: string[];
    /** Read by describeBackups for complete backups. */
    manifest?: Manifest;
    /** Why a backup is `unreadable`. */
    problem?: string;
    signature?: SignatureCheck;
}

const SIDE_SUFFIXES = [MANIFEST_SUFFIX, VERIFY_SUFFIX, IN_PROGRESS_SUFFIX, GLOBALS_SUFFIX];

function sideOf(key: string): { artifact: string; suffix: string } | undefined {
    const suffix = SIDE_SUFFIXES.find((s) => key.endsWith(s));
    return suffix ? { artifact: key.slice(0, -suffix.length), suffix } : undefined;
}

export function groupBackups(objects: readonly StoredObject[]): BackupEntry[] {
    const keys = new Set(objects.map((o) => o.key));
    const entries: BackupEntry[] = [];
    const claimed = new Set<string>();
    const sidecars = (artifact: string) => SIDE_SUFFIXES.map((s) => `${artifact}${s}`).filter((k) => keys.has(k));
    for (const o of objects) {
        if (sideOf(o.key)) {
            continue;
        }
        const partial = o.key.endsWith(PARTIAL_SUFFIX);
        const artifact = partial ? o.key.slice(0, -PARTIAL_SUFFIX.length) : o.key;
        const parsed = parseBackupName(artifact);
        if (!parsed) {
            continue;
        }
        const hasManifest = keys.has(`${artifact}${MANIFEST_SUFFIX}`);
        const marked = keys.has(`${artifact}${IN_PROGRESS_SUFFIX}`);
        let kind: EntryKind;
        let objectsOf: string[];
        if (partial) {
            // Local files still being written carry the suffix: kx-backup's own, only that file.
            kind = "incomplete";
            objectsOf = [o.key];
        } else {
            // The manifest is written only once every target holds the dump: with it, the backup is
            // complete even if a marker was left behind (a stop between the two writes).
            kind = hasManifest ? (isSafetyKey(artifact) ? "safety" : "full") : marked ? "incomplete" : "foreign";
            objectsOf = [o.key, ...sidecars(artifact)];
            objectsOf.forEach((k) => claimed.add(k));
        }
        entries.push({
            database: parsed.database,
            family: artifactFamily(parsed.ext),
            key: o.key,
            takenAt: parsed.takenAt,
            size: o.size,
            kind,
            complete: kind === "full" || kind === "safety",
            verified: (kind === "full" || kind === "safety") && keys.has(`${artifact}${VERIFY_SUFFIX}`),
            anomalous: false,
            objects: objectsOf,
        });
    }
    // Side objects whose artifact is gone (a prune or a failed run interrupted between deletes):
    // one orphan entry per artifact name, holding exactly those objects.
    const orphans = new Map<string, string[]>();
    for (const o of objects) {
        const side = sideOf(o.key);
        if (!side || claimed.has(o.key) || keys.has(side.artifact) || !parseBackupName(side.artifact)) {
            continue;
        }
        orphans.set(side.artifact, [...(orphans.get(side.artifact) ?? []), o.key]);
    }
    for (const [artifact, sides] of orphans) {
        const parsed = parseBackupName(artifact)!;
        entries.push({
            database: parsed.database,
            family: artifactFamily(parsed.ext),
            key: sides[0],
            takenAt: parsed.takenAt,
            size: 0,
            // A marker alone is an upload that never got a byte stored: the run's own leftover too.
            kind: sides.some((k) => k.endsWith(MANIFEST_SUFFIX)) ? "orphan" : "incomplete",
            complete: false,
            verified: false,
            anomalous: false,
            objects: sides,
        });
    }
    return entries.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || a.key.localeCompare(b.key));
}

/**
 * Why a `.verify.json` beside a backup cannot be trusted as "this backup passed a restore test",
 * or undefined when it can: it must be a passing record of this very backup (its key, its
 * sha256) and, with a signing key, signed with it. A record copied from another backup or
 * written by hand would otherwise keep a backup as "newest verified" (so prune lets the really
 * verified one go) and make `status` report a restore test that never ran. Pure.
 */
export function verifyRecordProblem(text: string, key: string, manifest: Manifest, signingKey: string | undefined): string | undefined {
    let r: { kind?: unknown; key?: unknown; ok?: unknown; sha256?: unknown; signature?: { alg?: string; value?: string } };
    try {
        r = JSON.parse(text);
    } catch {
        return "its verify record is not JSON";
    }
    if (!r || r.kind !== "kx-backup/verify" || r.ok !== true) {
        return "its verify record is not a passing kx-backup verify";
    }
    if (r.key !== key || (r.sha256 !== undefined && r.sha256 !== manifest.sha256)) {
        return "its verify record is about another backup";
    }
    if (signingKey) {
        const check = checkSignature(r, signingKey);
        if (check !== "valid") {
            return `its verify record is ${check === "unsigned" ? "not signed" : "signed with another key or altered"} (BACKUP_SIGNING_KEY is set)`;
        }
    }
    return undefined;
}

/**
 * Refines complete entries with their manifests (pure: the reader is injected). A manifest that
 * cannot be read, describes another backup, or (with a signing key) does not verify makes the
 * entry `unreadable`. A verify record that does not hold (verifyRecordProblem) makes it unverified.
 */
export async function describeBackups(
    entries: BackupEntry[],
    read: (key: string) => Promise<string>,
    o: { signingKey?: string; concurrency?: number } = {},
): Promise<BackupEntry[]> {
    const todo = entries.filter((e) => e.complete);
    let next = 0;
    const worker = async () => {
        while (next < todo.length) {
            const e = todo[next++];
            try {
                const text = await read(`${e.key}${MANIFEST_SUFFIX}`);
                const manifest = parseManifest(text, `${e.key}${MANIFEST_SUFFIX}`);
                if (manifest.key !== e.key || manifest.database !== e.database) {
                    throw new Error(`manifest describes ${manifest.key}, not ${e.key}`);
                }
                if ((manifest.kind === MANIFEST_KIND_ARCHIVE) !== (e.family === "archive")) {
                    throw new Error(`manifest describes ${manifest.kind === MANIFEST_KIND_ARCHIVE ? "an archive" : "a database dump"}, not what ${e.key} is`);
                }
                if (o.signingKey) {
                    e.signature = checkSignature(JSON.parse(text), o.signingKey);
                    if (e.signature !== "valid") {
                        throw new Error(e.signature === "unsigned" ? "manifest is not signed (BACKUP_SIGNING_KEY is set): written before the key was set, or forged" : "manifest signature does not verify: signed with another key (before a rotation), altered or forged");
                    }
                }
                e.manifest = manifest;
                e.anomalous = Boolean(manifest.anomaly);
                if (e.verified) {
                    const problem = await read(`${e.key}${VERIFY_SUFFIX}`).then(
                        (record) => {
                            e.verifyRecord = record;
                            return verifyRecordProblem(record, e.key, manifest, o.signingKey);
                        },
                        (err: Error) => `its verify record cannot be read: ${err.message}`,
                    );
                    if (problem) {
                        e.verifyRecord = undefined;
                        e.verified = false;
                        e.problem = `not verified: ${problem}`;
                    }
                }
                if (e.kind === "full" && (manifest.scope !== "full" || manifest.purpose === "safety")) {
                    e.kind = manifest.purpose === "safety" ? "safety" : "partial";
                }
            } catch (err) {
                e.kind = "unreadable";
                e.complete = false;
                e.verified = false;
                e.problem = (err as Error).message;
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 8, todo.length) }, worker));
    return entries;
}

export interface ListOptions {
    /** Read every complete backup's manifest (scope, purpose, anomaly). */
    manifests?: boolean;
    signingKey?: string;
}

/** Backups of one database (or all, grouped by folder) on a target. */
export async function listBackups(target: Target, database?: string, o: ListOptions = {}): Promise<BackupEntry[]> {
    const objects = await target.list(database ? `${database}/` : "");
    const entries = groupBackups(objects).filter((e) => database === undefined || e.database === database);
    return o.manifests ? describeBackups(entries, (k) => readText(target, k), o) : entries;
}

/**
 * The newest good full backup of a database on a target, reading manifests newest first and
 * stopping at the first that qualifies (cheaper than describing every backup).
 */
export async function newestGoodFull(target: Target, database: string, o: { signingKey?: string; now?: Date } = {}): Promise<BackupEntry | undefined> {
    const now = o.now ?? new Date();
    const entries = (await listBackups(target, database)).filter((e) => e.kind === "full" && e.family === "dump" && !fromTheFuture(e, now));
    for (const e of entries) {
        await describeBackups([e], (k) => readText(target, k), { signingKey: o.signingKey });
        if (e.kind === "full" && !e.anomalous) {
            return e;
        }
    }
    return undefined;
}

/**
 * How far a backup's name may lie ahead of this clock. Names carry the writer's clock: a node
 * whose clock ran a year ahead once would otherwise leave a backup that stays `latest`, the
 * anomaly baseline and "inside the RPO" for that whole year.
 */
export const CLOCK_SKEW_MS = 60 * 60_000;

/** True when a backup is dated beyond the tolerated skew after `now`. Pure. */
export function fromTheFuture(e: { takenAt: Date }, now: Date): boolean {
    return e.takenAt.getTime() > now.getTime() + CLOCK_SKEW_MS;
}

/** "dated 9600 h ahead of this clock": for messages. Pure. */
export function futureNote(e: { takenAt: Date }, now: Date): string {
    const hours = Math.round((e.takenAt.getTime() - now.getTime()) / 3_600_000);
    return `dated ${hours} h ahead of this clock (${e.takenAt.toISOString()}): a clock was wrong when it was taken, or is now; never counted as the newest or a good backup`;
}

/** Full backups that count as good ones: complete, whole-database, not anomalous, not dated in the future. */
export function goodFullBackups(entries: readonly BackupEntry[], now: Date = new Date()): BackupEntry[] {
    return entries.filter((e) => e.kind === "full" && !e.anomalous && !fromTheFuture(e, now));
}
