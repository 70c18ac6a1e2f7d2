/**
 * Where backups live. The job writes with these functions and the stack's lifecycle rules are
 * built from the same ones, so a rule can never miss the objects it is meant to expire.
 * Pure: no I/O.
 */

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

/** Extensions by artifact kind: a custom-format dump, a tarred directory-format dump, a tar.gz archive. */
export type ArtifactExtension = "dump" | "dump.tar" | "sql" | "tar.gz";

export function backupKey(prefix: string | undefined, database: string, at: Date, ext: ArtifactExtension): string {
    return `${databasePrefix(prefix, database)}${database}-${timestamp(at)}.${ext}`;
}

export function manifestKey(backup: string): string {
    return `${backup}${MANIFEST_SUFFIX}`;
}

const NAME_PATTERN = /^(.+)-(\d{8})-(\d{6})\.(dump|dump\.tar|sql|tar\.gz)$/;

export interface ParsedBackupName {
    database: string;
    takenAt: Date;
    ext: ArtifactExtension;
}

/** Reads the database and time back out of a backup's file name; `undefined` for anything else. */
export function parseBackupName(fileName: string): ParsedBackupName | undefined {
    const base = fileName.slice(fileName.lastIndexOf("/") + 1);
    const m = NAME_PATTERN.exec(base);
    if (!m) {
        return undefined;
    }
    const [, database, day, time, ext] = m;
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
    return { database, takenAt, ext: ext as ArtifactExtension };
}
