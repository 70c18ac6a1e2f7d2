/**
 * The prune plan: which backups of one database on one target to delete, and why. Pure, so
 * every rule has a table-driven test. Deletes only what the rules allow; when the newest
 * complete backup is itself past retention (backups have been failing), it deletes nothing.
 */
import { BackupEntry } from "./catalog";

export interface RetentionPolicy {
    retentionDays: number;
    /** The newest this-many complete backups are always kept. */
    keepMin: number;
    /** Incomplete leftovers younger than this may still be in progress. Default 24 h. */
    incompleteGraceHours?: number;
}

export interface PlannedAction {
    key: string;
    reason: string;
    /** All objects to delete for it (manifest first, so an interrupted prune leaves an incomplete, not a corrupt, backup). */
    objects: string[];
}

export interface PrunePlan {
    keep: PlannedAction[];
    delete: PlannedAction[];
    /** Set when nothing may be deleted because backups look stale; prune exits non-zero. */
    stale?: string;
}

const DAY = 86_400_000;

export function planPrune(entries: readonly BackupEntry[], policy: RetentionPolicy, now: Date): PrunePlan {
    const graceMs = (policy.incompleteGraceHours ?? 24) * 3_600_000;
    const cutoff = now.getTime() - policy.retentionDays * DAY;
    const sorted = [...entries].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime());
    const complete = sorted.filter((e) => e.complete);
    const plan: PrunePlan = { keep: [], delete: [] };
    const order = (e: BackupEntry) => [...e.objects].sort((a, b) => rank(a) - rank(b));

    if (sorted.length > 0 && (complete.length === 0 || complete[0].takenAt.getTime() < cutoff)) {
        plan.stale = complete.length === 0
            ? `no complete backup among ${sorted.length} object(s): backups are failing; nothing deleted`
            : `newest complete backup ${complete[0].key} is older than ${policy.retentionDays} days: backups are failing; nothing deleted`;
        plan.keep = sorted.map((e) => ({ key: e.key, reason: "stale guard", objects: e.objects }));
        return plan;
    }

    const newestVerified = complete.find((e) => e.verified);
    complete.forEach((e, i) => {
        if (i < policy.keepMin) {
            plan.keep.push({ key: e.key, reason: `newest ${policy.keepMin} kept`, objects: e.objects });
        } else if (e === newestVerified) {
            plan.keep.push({ key: e.key, reason: "newest verified", objects: e.objects });
        } else if (e.takenAt.getTime() >= cutoff) {
            plan.keep.push({ key: e.key, reason: `within ${policy.retentionDays} days`, objects: e.objects });
        } else {
            plan.delete.push({ key: e.key, reason: `older than ${policy.retentionDays} days`, objects: order(e) });
        }
    });
    for (const e of sorted.filter((x) => !x.complete)) {
        if (now.getTime() - e.takenAt.getTime() > graceMs) {
            plan.delete.push({ key: e.key, reason: "incomplete, older than a day", objects: order(e) });
        } else {
            plan.keep.push({ key: e.key, reason: "incomplete, may be in progress", objects: e.objects });
        }
    }
    return plan;
}

function rank(key: string): number {
    return key.endsWith(".manifest.json") ? 0 : key.endsWith(".verify.json") ? 2 : 1;
}
