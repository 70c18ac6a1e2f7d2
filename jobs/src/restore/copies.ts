/**
 * Every copy of a backup is checked: each target's copy is streamed through sha256 against its
 * manifest (cheap: nothing is written), and one copy is test-restored, rotating through the
 * targets across runs: the copy whose last test-restore is oldest (never first), read from the
 * `.verify.json` records, so the order holds whatever the verify schedule.
 */
import { createHash } from "crypto";
import { Transform } from "stream";
import { pipeline } from "stream/promises";
import { Writable } from "stream";
import { describeBackups, listBackups } from "../catalog";
import { locate, Located, LocateOptions } from "../fetch";
import { JobError } from "../log";
import { lastRestoredAt, TimedRecord } from "../restoreTimes";
import { readText, Target } from "../targets";

export interface CopyCheck {
    target: string;
    ok: boolean;
    detail: string;
}

/** Streams one copy through sha256 and compares it with that target's manifest. */
export async function hashCopy(located: Located): Promise<CopyCheck> {
    const { target, entry, manifest } = located;
    const hash = createHash("sha256");
    let size = 0;
    try {
        await pipeline(
            await target.get(entry.key),
            new Transform({
                transform(chunk: Buffer, _enc, cb) {
                    hash.update(chunk);
                    size += chunk.length;
                    cb();
                },
            }),
            new Writable({ write: (_c, _e, cb) => cb() }),
        );
    } catch (e) {
        return { target: target.kind, ok: false, detail: `cannot read ${entry.key}: ${(e as Error).message}` };
    }
    const sha256 = hash.digest("hex");
    if (size !== manifest.size) {
        return { target: target.kind, ok: false, detail: `size mismatch: stored ${size} bytes, manifest says ${manifest.size} (truncated or replaced)` };
    }
    if (sha256 !== manifest.sha256) {
        return { target: target.kind, ok: false, detail: `checksum mismatch: sha256 ${sha256} ≠ manifest ${manifest.sha256} (corrupted)` };
    }
    return { target: target.kind, ok: true, detail: `sha256 ${sha256.slice(0, 16)}… matches` };
}

/** Finds the same backup (by name) on another target and checks its copy there. */
export async function checkCopy(target: Target, database: string, key: string, o: LocateOptions): Promise<{ check: CopyCheck; located?: Located }> {
    const name = key.slice(database.length + 1);
    try {
        const located = await locate(target, database, name, o);
        return { check: await hashCopy(located), located };
    } catch (e) {
        return { check: { target: target.kind, ok: false, detail: e instanceof JobError ? e.message : (e as Error).message } };
    }
}

/** A checked verify record: the copy it test-restored, when, and its times (restoreTimes.ts). */
export interface RestoreRecord extends TimedRecord {
    /** The target whose copy was test-restored. */
    target: string;
    finishedAt: string;
}

/**
 * Which target's copy to test-restore: the one whose last test-restore is oldest; one never
 * tested comes first; ties go to the configured order (local, s3, azure). Pure.
 */
export function rotationTarget(kinds: readonly string[], history: readonly RestoreRecord[], database: string): string {
    // The times records carry count too: a record replaced by a later verify of the same backup
    // would otherwise make the copy it named look never tested, and starve another.
    const restored = lastRestoredAt(history, database);
    const last = (k: string) => restored.get(k) ?? -1;
    return [...kinds].sort((a, b) => last(a) - last(b) || kinds.indexOf(a) - kinds.indexOf(b))[0];
}

/**
 * The newest test-restores recorded on the targets: `.verify.json` beside the newest verified
 * backups, as the catalog checks them (about that very backup, passing, and signed when
 * BACKUP_SIGNING_KEY is set): the rotation, and the times each new record carries on, are never
 * taken from a record anyone could have written. A target that cannot be read adds none.
 */
export async function restoreHistory(targets: readonly Target[], database: string, signingKey: string | undefined): Promise<RestoreRecord[]> {
    const found: RestoreRecord[] = [];
    const want = targets.length + 1;
    for (const t of targets) {
        const candidates = (await listBackups(t, database).catch(() => [])).filter((e) => e.verified && e.family === "dump");
        // Newest first, until `want` records hold: objects that fail the checks (a planted
        // "backup" with an unsigned manifest) never push the real records out of the window.
        let held = 0;
        for (let i = 0; i < candidates.length && held < want; i += want) {
            const batch = candidates.slice(i, i + want);
            await describeBackups(batch, (k) => readText(t, k), { signingKey }).catch(() => undefined);
            // Full, good backups only: a schema-only, safety or anomalous (much smaller) backup's
            // restore time is no copy's RTO.
            for (const e of batch.filter((x) => x.verified && x.kind === "full" && !x.anomalous && x.verifyRecord !== undefined)) {
                try {
                    const record = JSON.parse(e.verifyRecord!) as Partial<RestoreRecord>;
                    if (typeof record.target === "string" && typeof record.finishedAt === "string") {
                        found.push({ ...record, target: record.target, finishedAt: record.finishedAt, key: e.key });
                        held++;
                    }
                } catch {
                    // Not JSON: the catalog has already made such an entry unverified.
                }
            }
        }
    }
    return found;
}
