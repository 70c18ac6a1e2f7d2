/**
 * The prune plan: which backups of one database on one target to delete, and why. Pure, so
 * every rule has a table-driven test. Deletes only what kx-backup wrote and the rules allow:
 *   - good full backups (complete, whole database, not anomalous) past retention, always keeping
 *     the newest `keepMin` of them and the newest verified one;
 *   - anomalous and partial backups past retention (they never count toward keepMin);
 *   - safety dumps past their own retention, always keeping the newest;
 *   - kx-backup's own unfinished uploads and orphaned side files older than the grace period.
 * Never: a foreign dump (not written by kx-backup), an unreadable or unverifiable manifest's
 * backup. When the newest good full backup is itself past retention (backups have been
 * failing), it deletes nothing at all.
 */
import { BackupEntry, fromTheFuture, futureNote, goodFullBackups } from "./catalog";
import { GLOBALS_SUFFIX, IN_PROGRESS_SUFFIX, isSafetyKey, MANIFEST_SUFFIX } from "./naming";

export interface RetentionPolicy {
    retentionDays: number;
    /** The newest this-many good full backups are always kept. */
    keepMin: number;
    /** Safety dumps are kept this long; the newest always. Default 7. */
    safetyRetentionDays?: number;
    /** Unfinished uploads younger than this may still be in progress. Default 24 h. */
    incompleteGraceHours?: number;
}

export interface PlannedAction {
    key: string;
    reason: string;
    /** All objects to delete for it, artifact first: an interrupted prune leaves side files (an orphan, cleaned up later), never a manifest that vouches for a missing or partial dump's replacement. */
    objects: string[];
}

export interface PrunePlan {
    keep: PlannedAction[];
    delete: PlannedAction[];
    /** Set when nothing may be deleted because backups look stale; prune exits non-zero. */
    stale?: string;
    /** Dumps kx-backup did not write, or cannot read: kept, and worth a look. */
    notes: string[];
}

const DAY = 86_400_000;

export function planPrune(entries: readonly BackupEntry[], policy: RetentionPolicy, now: Date): PrunePlan {
    const graceMs = (policy.incompleteGraceHours ?? 24) * 3_600_000;
    const cutoff = now.getTime() - policy.retentionDays * DAY;
    const safetyCutoff = now.getTime() - (policy.safetyRetentionDays ?? 7) * DAY;
    const sorted = [...entries].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime());
    const good = goodFullBackups(sorted, now);
    const plan: PrunePlan = { keep: [], delete: [], notes: [] };
    const keep = (e: BackupEntry, reason: string) => plan.keep.push({ key: e.key, reason, objects: e.objects });
    const remove = (e: BackupEntry, reason: string) => plan.delete.push({ key: e.key, reason, objects: order(e.objects) });

    for (const e of sorted) {
        if (e.kind === "foreign") {
            plan.notes.push(`${e.key} was not written by kx-backup: kept (kx-backup adopt brings it under retention)`);
        } else if (e.kind === "unreadable") {
            plan.notes.push(`${e.key}: ${e.problem ?? "manifest unreadable"}: kept, never used`);
        } else if (e.kind === "full" && fromTheFuture(e, now)) {
            plan.notes.push(`${e.key} is ${futureNote(e, now)}; kept`);
        }
    }
    // What a backup schedule writes, and so can be stale. Safety dumps are a restore's: a database
    // only ever restored into (crypto_exchange_test, the drill's) holds nothing else, and would
    // otherwise fail every prune as "backups are failing" and keep its safety dumps forever.
    const own = sorted.filter((e) => e.kind !== "foreign" && e.kind !== "unreadable" && e.kind !== "safety" && !isSafetyKey(e.key));
    if (own.length > 0 && (good.length === 0 || good[0].takenAt.getTime() < cutoff)) {
        const anomalous = own.filter((e) => e.kind === "full" && e.anomalous).length;
        const why = anomalous > 0 ? `${anomalous} newer backup(s) are anomalous` : "backups are failing";
        plan.stale = good.length === 0
            ? `no good full backup among ${own.length} backup(s) and leftover(s): ${why}; nothing deleted`
            : `newest good full backup ${good[0].key} is older than ${policy.retentionDays} days: ${why}; nothing deleted`;
        sorted.forEach((e) => keep(e, "stale guard"));
        return plan;
    }

    const keptGood = new Set(good.slice(0, policy.keepMin));
    const newestVerified = good.find((e) => e.verified);
    const newestSafety = sorted.find((e) => e.kind === "safety");
    const old = (e: BackupEntry) => e.takenAt.getTime() < cutoff;
    for (const e of sorted) {
        switch (e.kind) {
            case "foreign":
                keep(e, "not written by kx-backup");
                break;
            case "unreadable":
                keep(e, "manifest unreadable or unverified: never deleted");
                break;
            case "full":
                if (keptGood.has(e)) {
                    keep(e, `newest ${policy.keepMin} kept`);
                } else if (e === newestVerified) {
                    keep(e, "newest verified");
                } else if (!old(e)) {
                    keep(e, fromTheFuture(e, now) ? "dated in the future" : e.anomalous ? `anomalous, within ${policy.retentionDays} days` : `within ${policy.retentionDays} days`);
                } else {
                    remove(e, e.anomalous ? `anomalous, older than ${policy.retentionDays} days` : `older than ${policy.retentionDays} days`);
                }
                break;
            case "partial":
                if (old(e)) {
                    remove(e, `partial backup older than ${policy.retentionDays} days`);
                } else {
                    keep(e, `partial backup within ${policy.retentionDays} days`);
                }
                break;
            case "safety":
                if (e === newestSafety) {
                    keep(e, "newest safety dump");
                } else if (e.takenAt.getTime() < safetyCutoff) {
                    remove(e, `safety dump older than ${policy.safetyRetentionDays ?? 7} days`);
                } else {
                    keep(e, `safety dump within ${policy.safetyRetentionDays ?? 7} days`);
                }
                break;
            case "incomplete":
            case "orphan":
                if (now.getTime() - e.takenAt.getTime() > graceMs) {
                    remove(e, e.kind === "incomplete" ? "kx-backup's own unfinished upload, older than a day" : "leftover of an interrupted delete");
                } else {
                    keep(e, "unfinished, may be in progress");
                }
                break;
        }
    }
    return plan;
}

/** The artifact first, its manifest after, the in-progress marker last. */
function order(objects: readonly string[]): string[] {
    const rank = (key: string) =>
        key.endsWith(IN_PROGRESS_SUFFIX) ? 4 : key.endsWith(MANIFEST_SUFFIX) ? 2 : key.endsWith(GLOBALS_SUFFIX) ? 1 : key.endsWith(".verify.json") ? 3 : 0;
    return [...objects].sort((a, b) => rank(a) - rank(b));
}
