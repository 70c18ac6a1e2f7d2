/**
 * Where backups live. The job writes with these functions and the stack's lifecycle rules are
 * built from the same ones, so a rule can never miss the objects it is meant to expire.
 * Pure: no I/O.
 *
 * Layout under a target's root (its directory or prefix):
 *   <db>/<db>-YYYYMMDD-HHMMSS-<run>.dump             a backup kx-backup wrote (full or partial)
 *   <db>/<db>-YYYYMMDD-HHMMSS-<run>.dump.manifest.json   its manifest: what makes it complete
 *   <db>/safety/<db>-YYYYMMDD-HHMMSS-<run>.dump      a restore's safety dump: never `latest`
 *   <db>/<db>-YYYYMMDD-HHMMSS.dump                   the runbook's own name: read, adopted, never written
 * `<run>` is random per run, so two runs in the same second never share a name.
 */
import { randomBytes } from "crypto";

/** Joins an optional prefix and a database into the folder every object of that database sits under. */
export function databasePrefix(prefix: string | undefined, database: string): string {
    const clean = (prefix ?? "").replace(/^\/+|\/+$/g, "");
    return clean === "" ? `${database}/` : `${clean}/${database}/`;
}

/** `YYYYMMDD-HHMMSS` in UTC, as the runbook names its dumps. */
export function timestamp(at: Date): string {
    const p = (n: number) => String(n).padStart(2, "0");
    return (
        `${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}-` +
        `${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}`
    );
}

export const MANIFEST_SUFFIX = ".manifest.json";
/** Written beside a backup before its upload starts and removed once its manifest is committed: marks kx-backup's own in-progress (or abandoned) objects. */
export const IN_PROGRESS_SUFFIX = ".inprogress.json";
/** The cluster's roles (pg_dumpall --globals-only), stored beside each database dump. */
export const GLOBALS_SUFFIX = ".globals.sql";
/** The sub-folder of a database's folder that holds restore safety dumps. */
export const SAFETY_FOLDER = "safety";

/** Extensions by artifact kind: a custom-format dump, a tarred directory-format dump, plain SQL, a tar.gz archive. */
export type ArtifactExtension = "dump" | "dump.tar" | "sql" | "tar.gz";

/**
 * What an artifact is, from its name: a database dump (custom, tarred directory, plain SQL) or
 * an archive of files. An archive and a database may share a folder name (`archive --name kong`):
 * each is only ever compared, counted and restored with its own family.
 */
export type ArtifactFamily = "dump" | "archive";

export function artifactFamily(ext: ArtifactExtension): ArtifactFamily {
    return ext === "tar.gz" ? "archive" : "dump";
}

/** A fresh run id: 6 lowercase hex characters, part of every name the run writes. */
export function newRunId(): string {
    return randomBytes(3).toString("hex");
}

export interface KeyOptions {
    /** Safety dumps go to `<db>/safety/`. */
    safety?: boolean;
    /** Defaults to a fresh random id. */
    runId?: string;
}

export function backupKey(prefix: string | undefined, database: string, at: Date, ext: ArtifactExtension, o: KeyOptions = {}): string {
    const run = o.runId ?? newRunId();
    if (!/^[0-9a-z]{4,12}$/.test(run)) {
        throw new Error(`run id ${run}: expected 4 to 12 lowercase letters or digits`);
    }
    const folder = `${databasePrefix(prefix, database)}${o.safety ? `${SAFETY_FOLDER}/` : ""}`;
    return `${folder}${database}-${timestamp(at)}-${run}.${ext}`;
}

export function manifestKey(backup: string): string {
    return `${backup}${MANIFEST_SUFFIX}`;
}

export function inProgressKey(backup: string): string {
    return `${backup}${IN_PROGRESS_SUFFIX}`;
}

export function globalsKey(backup: string): string {
    return `${backup}${GLOBALS_SUFFIX}`;
}

const NAME_PATTERN = /^(.+)-(\d{8})-(\d{6})(?:-([0-9a-z]{4,12}))?\.(dump|dump\.tar|sql|tar\.gz)$/;

export interface ParsedBackupName {
    database: string;
    takenAt: Date;
    ext: ArtifactExtension;
    /** The run id; absent in the runbook's own names (`<db>-YYYYMMDD-HHMMSS.dump`). */
    runId?: string;
}

/** Reads the database and time back out of a backup's file name; `undefined` for anything else. */
export function parseBackupName(fileName: string): ParsedBackupName | undefined {
    const base = fileName.slice(fileName.lastIndexOf("/") + 1);
    const m = NAME_PATTERN.exec(base);
    if (!m) {
        return undefined;
    }
    const [, database, day, time, runId, ext] = m;
    const takenAt = new Date(
        Date.UTC(
            Number(day.slice(0, 4)),
            Number(day.slice(4, 6)) - 1,
            Number(day.slice(6, 8)),
            Number(time.slice(0, 2)),
            Number(time.slice(2, 4)),
            Number(time.slice(4, 6)),
        ),
    );
    if (Number.isNaN(takenAt.getTime()) || timestamp(takenAt) !== `${day}-${time}`) {
        return undefined;
    }
    return { database, takenAt, ext: ext as ArtifactExtension, ...(runId ? { runId } : {}) };
}

/** True when a key sits in a database's safety folder: `<db>/safety/<name>`. */
export function isSafetyKey(key: string): boolean {
    const parts = key.split("/");
    return parts.length >= 3 && parts[parts.length - 2] === SAFETY_FOLDER;
}

/**
 * A database name kx-backup can use as a folder and file name: PostgreSQL allows almost anything
 * in a name, but a `/`, a control character or a leading dot would change where backups land.
 */
export function checkDatabaseName(name: string): string | undefined {
    // PostgreSQL cuts names at 63 bytes (a NOTICE, no error): a longer one would name another database.
    if (name.length === 0 || Buffer.byteLength(name, "utf8") > 63) {
        return `database name "${name}": expected 1 to 63 bytes (UTF-8)`;
    }
    if (/[/\\\u0000-\u001f\u007f]/.test(name) || name.startsWith(".")) {
        return `database name "${name}": "/", "\\", control characters and a leading "." cannot be used in backup names`;
    }
    return undefined;
}
