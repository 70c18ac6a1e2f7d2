/**
 * `kx-backup status`: is every database inside its RPO, with a recent verified restore inside its
 * RTO? Read from the targets themselves (manifests and verify records), so it answers the same on
 * a laptop as in the cluster. `assessStatus` is pure: every rule is tested without storage.
 */
import { BackupEntry, EntryKind, fromTheFuture, futureNote, listBackups } from "./catalog";
import { formatAge, renderTable } from "./commands";
import { formatBytes, formatDuration, JobError } from "./log";
import { MANIFEST_KIND } from "./manifest";
import { Target, TARGET_KINDS } from "./targets";

export interface Objectives {
    rpoHours: number;
    rtoMinutes: number;
    verifyMaxAgeDays: number;
}

/** What a verify record says, as far as status needs it. */
export interface VerifyRecord {
    finishedAt: string;
    /** The copy verify restored (and timed). */
    target?: string;
    restoreDurationMs?: number;
    restoreEndToEndMs?: number;
}

export type MeasuredRestore = { ms: number; endToEnd: boolean } | { unusable: string };

/**
 * The restore time a verify record measured, as the RTO is judged: end to end (fetch, checks,
 * pg_restore, comparison); for a record written before that was measured (no such field),
 * pg_restore's part, said as such, as it is an underestimate. A field that is there but not a
 * duration (a string, negative, not finite) is never replaced by another: the record is
 * unusable, and the RTO cannot be judged from it. Pure.
 */
export function measuredRestore(r: { restoreDurationMs?: unknown; restoreEndToEndMs?: unknown }): MeasuredRestore {
    const valid = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0;
    const invalid = (field: string, x: unknown): MeasuredRestore => ({ unusable: `${field} is ${JSON.stringify(x) ?? String(x)}` });
    if (r.restoreEndToEndMs !== undefined) {
        if (!valid(r.restoreEndToEndMs)) {
            return invalid("restoreEndToEndMs", r.restoreEndToEndMs);
        }
        // verify times pg_restore inside the whole: a whole shorter than its part was not written by it.
        if (valid(r.restoreDurationMs) && r.restoreEndToEndMs < r.restoreDurationMs) {
            return { unusable: `restoreEndToEndMs ${r.restoreEndToEndMs} is shorter than its own pg_restore part, restoreDurationMs ${r.restoreDurationMs}` };
        }
        return { ms: r.restoreEndToEndMs, endToEnd: true };
    }
    if (r.restoreDurationMs === undefined) {
        return { unusable: "it records no restore time" };
    }
    return valid(r.restoreDurationMs) ? { ms: r.restoreDurationMs, endToEnd: false } : invalid("restoreDurationMs", r.restoreDurationMs);
}

export interface TargetView {
    target: string;
    /** Backups described with their manifests, newest first; absent when the target could not be read. */
    entries?: BackupEntry[];
    error?: string;
    /** Verify records by backup key. */
    verifies: Map<string, VerifyRecord>;
}

export interface TrendPoint {
    key: string;
    takenAt: string;
    size: number;
    rows?: number;
}

export interface DatabaseStatus {
    database: string;
    objectives: Objectives;
    newestFull?: { key: string; takenAt: string; ageHours: number; size: number; anomalous: boolean; anomaly?: string[] };
    /**
     * target: where the record was read. restoredFrom: the copy that verify restored and timed
     * (verify rotates through the targets). restoreMinutes: end to end (restoreEndToEnd true), or
     * pg_restore alone in a record from before that was measured; restoreUnusable: why neither.
     */
    newestVerified?: { key: string; target: string; restoredFrom?: string; verifiedAt: string; ageDays: number; restoreMinutes?: number; restoreEndToEnd?: boolean; overRto?: boolean; restoreUnusable?: string };
    targets: { target: string; newestFull?: string; counts: Partial<Record<EntryKind | "anomalous" | "verified", number>>; error?: string }[];
    targetsAgree: boolean;
    /** Full backups, newest first (at most 8): size and total rows over time. */
    trend: TrendPoint[];
    problems: string[];
    ok: boolean;
}

const HOUR = 3_600_000;

function round1(n: number): number {
    return Math.round(n * 10) / 10;
}

/** Assesses one database from what each target holds. Pure. */
export function assessStatus(database: string, views: readonly TargetView[], o: Objectives, now: Date): DatabaseStatus {
    const problems: string[] = [];
    const readable = views.filter((v) => v.entries);
    for (const v of views.filter((x) => x.error)) {
        problems.push(`${database}: target ${v.target} unreadable: ${v.error}`);
    }
    const targets = views.map((v) => {
        const counts: DatabaseStatus["targets"][number]["counts"] = {};
        for (const e of v.entries ?? []) {
            counts[e.kind] = (counts[e.kind] ?? 0) + 1;
            if (e.anomalous) {
                counts.anomalous = (counts.anomalous ?? 0) + 1;
            }
            if (e.verified) {
                counts.verified = (counts.verified ?? 0) + 1;
            }
        }
        const newest = v.entries?.find((e) => e.kind === "full" && !fromTheFuture(e, now));
        return { target: v.target, newestFull: newest?.key, counts, ...(v.error ? { error: v.error } : {}) };
    });

    // A backup dated ahead of this clock would hold the RPO "met" until the clock caught up.
    const ahead = new Set<string>();
    for (const e of readable.flatMap((v) => v.entries!.filter((x) => x.kind === "full" && fromTheFuture(x, now)))) {
        if (!ahead.has(e.key)) {
            ahead.add(e.key);
            problems.push(`${database}: clock: ${e.key} is ${futureNote(e, now)}`);
        }
    }

    // The newest full backup anywhere: its age is the data at risk.
    const fulls = readable.flatMap((v) => v.entries!.filter((e) => e.kind === "full" && !fromTheFuture(e, now)));
    fulls.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime());
    const newest = fulls[0];
    let newestFull: DatabaseStatus["newestFull"];
    if (!newest) {
        problems.push(`${database}: RPO: no complete full backup on any target (RPO ${o.rpoHours} h)`);
    } else {
        const ageHours = (now.getTime() - newest.takenAt.getTime()) / HOUR;
        newestFull = {
            key: newest.key,
            takenAt: newest.takenAt.toISOString(),
            ageHours: round1(ageHours),
            size: newest.size,
            anomalous: newest.anomalous,
            ...(newest.manifest?.anomaly ? { anomaly: newest.manifest.anomaly.reasons } : {}),
        };
        if (ageHours > o.rpoHours) {
            problems.push(`${database}: RPO: newest full backup ${newest.key} is ${formatAge(round1(ageHours))} old (RPO ${o.rpoHours} h)`);
        }
        if (newest.anomalous) {
            problems.push(`${database}: anomaly: newest full backup ${newest.key} is anomalous: ${newest.manifest?.anomaly?.reasons.join("; ") ?? "see list"}`);
        }
    }

    // The newest good full backup with a verify record, on any target.
    let newestVerified: DatabaseStatus["newestVerified"];
    for (const v of readable) {
        for (const e of v.entries!) {
            const record = e.kind === "full" && !e.anomalous && e.verified && !fromTheFuture(e, now) ? v.verifies.get(e.key) : undefined;
            const at = record ? new Date(record.finishedAt) : undefined;
            if (at && fromTheFuture({ takenAt: at }, now)) {
                // A verify pod whose clock ran ahead would keep "verify age" met until the clock caught up.
                problems.push(`${database}: clock: the restore test of ${e.key} on ${v.target} is ${futureNote({ takenAt: at }, now).replace("never counted as the newest or a good backup", "not counted")}`);
                continue;
            }
            if (record && at && !Number.isNaN(at.getTime()) && (!newestVerified || at.toISOString() > newestVerified.verifiedAt)) {
                const measured = measuredRestore(record);
                newestVerified = {
                    key: e.key,
                    target: v.target,
                    verifiedAt: at.toISOString(),
                    ageDays: round1((now.getTime() - at.getTime()) / (24 * HOUR)),
                    // Only a target kind is shown: the record's text reaches the terminal and the logs.
                    ...((TARGET_KINDS as readonly unknown[]).includes(record.target) ? { restoredFrom: record.target } : {}),
                    // Judged on the exact time, as the alert judges the pushed gauge (minutes shown rounded).
                    ...("ms" in measured
                        ? { restoreMinutes: round1(measured.ms / 60_000), restoreEndToEnd: measured.endToEnd, overRto: measured.ms > o.rtoMinutes * 60_000 }
                        : { restoreUnusable: measured.unusable }),
                };
            }
        }
    }
    if (!newestVerified) {
        problems.push(`${database}: verify age: no backup has passed a restore test (allowed age ${o.verifyMaxAgeDays} d)`);
    } else {
        if (newestVerified.ageDays > o.verifyMaxAgeDays) {
            problems.push(`${database}: verify age: the last restore test (${newestVerified.key}) was ${newestVerified.ageDays} d ago (allowed ${o.verifyMaxAgeDays} d)`);
        }
        const from = newestVerified.restoredFrom ? ` of the copy on ${newestVerified.restoredFrom}` : "";
        if (newestVerified.restoreUnusable !== undefined) {
            problems.push(`${database}: RTO: the record of the last restore test (${newestVerified.key}) holds no usable restore time (${newestVerified.restoreUnusable}): the RTO cannot be judged`);
        } else if (newestVerified.restoreMinutes !== undefined && newestVerified.overRto) {
            problems.push(`${database}: RTO: the last restore test${from} took ${formatDuration(newestVerified.restoreMinutes * 60_000)}` +
                `${newestVerified.restoreEndToEnd ? " end to end (fetch, checks, pg_restore, comparison)" : " in pg_restore alone (a record from before the whole restore was timed)"} (RTO ${o.rtoMinutes} min)`);
        }
    }

    // Every target should hold the same newest full backup.
    const names = targets.filter((t) => !t.error).map((t) => t.newestFull ?? "none");
    const targetsAgree = new Set(names).size <= 1;
    if (!targetsAgree) {
        problems.push(`${database}: targets disagree: newest full backup ${targets.filter((t) => !t.error).map((t) => `on ${t.target} ${t.newestFull ?? "none"}`).join(", ")}`);
    }

    const seen = new Set<string>();
    const trend: TrendPoint[] = [];
    for (const e of fulls) {
        if (seen.has(e.key) || trend.length >= 8) {
            continue;
        }
        seen.add(e.key);
        const rows = e.manifest && e.manifest.counts.method !== "none" ? e.manifest.tables.reduce((n, t) => n + t.rows, 0) : undefined;
        trend.push({ key: e.key, takenAt: e.takenAt.toISOString(), size: e.size, ...(rows !== undefined ? { rows } : {}) });
    }
    return { database, objectives: o, newestFull, newestVerified, targets, targetsAgree, trend, problems, ok: problems.length === 0 };
}

async function viewOf(target: Target, database: string | undefined, signingKey: string | undefined, now: Date): Promise<Map<string, TargetView>> {
    const entries = await listBackups(target, database, { manifests: true, signingKey });
    const byDb = new Map<string, BackupEntry[]>();
    for (const e of entries) {
        // Archives (volumes, configuration) share the layout; status is about databases.
        if (e.family !== "dump" || (e.manifest && e.manifest.kind !== MANIFEST_KIND)) {
            continue;
        }
        byDb.set(e.database, [...(byDb.get(e.database) ?? []), e]);
    }
    if (database !== undefined && !byDb.has(database)) {
        byDb.set(database, []);
    }
    const views = new Map<string, TargetView>();
    for (const [db, list] of byDb) {
        const verifies = new Map<string, VerifyRecord>();
        // Only the newest verified good full backup's record matters.
        const newest = list.find((e) => e.kind === "full" && !e.anomalous && e.verified && !fromTheFuture(e, now));
        // The record's text as the catalog read and checked it (signature and all), never a second read that could differ.
        if (newest?.verifyRecord !== undefined) {
            try {
                verifies.set(newest.key, JSON.parse(newest.verifyRecord) as VerifyRecord);
            } catch {
                // An unreadable record counts as no record.
            }
        }
        views.set(db, { target: target.kind, entries: list, verifies });
    }
    return views;
}

/** Reads every target and assesses each database found (or the one asked for). */
export async function collectStatus(targets: Target[], database: string | undefined, o: Objectives, now: Date, signingKey?: string): Promise<DatabaseStatus[]> {
    const perDb = new Map<string, TargetView[]>();
    const failed: TargetView[] = [];
    for (const t of targets) {
        try {
            for (const [db, view] of await viewOf(t, database, signingKey, now)) {
                perDb.set(db, [...(perDb.get(db) ?? []), view]);
            }
        } catch (e) {
            failed.push({ target: t.kind, error: `${t.location}: ${(e as Error).message}`, verifies: new Map() });
        }
    }
    // A target that cannot be read is a problem of every database, those only later targets
    // showed included: read first, its failure would otherwise vanish from the report.
    if (database !== undefined && !perDb.has(database)) {
        perDb.set(database, []);
    }
    if (perDb.size === 0 && failed.length > 0) {
        throw new JobError(`status: no target could be read: ${failed.map((f) => f.error).join("; ")}`);
    }
    for (const db of perDb.keys()) {
        perDb.set(db, [...perDb.get(db)!, ...failed]);
    }
    if (perDb.size === 0) {
        throw new JobError(`no backups of any database on ${targets.map((t) => t.location).join(", ")}`);
    }
    return [...perDb.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([db, views]) => assessStatus(db, views, o, now));
}

/** The terminal table: one row per database, then one line per problem. */
/** "4m0s (s3)", "28m0s (local, pg_restore only)": the time, whose copy, and whether it is pg_restore's alone. */
function restoreCell(v: NonNullable<DatabaseStatus["newestVerified"]>): string {
    const notes = [v.restoredFrom, v.restoreEndToEnd ? undefined : "pg_restore only"].filter((n): n is string => n !== undefined);
    return `${formatDuration(v.restoreMinutes! * 60_000)}${notes.length > 0 ? ` (${notes.join(", ")})` : ""}`;
}

export function renderStatus(rows: DatabaseStatus[]): string {
    const table = [
        ["DATABASE", "NEWEST FULL", "AGE / RPO", "SIZE", "VERIFIED", "RESTORE / RTO", "TARGETS", "STATE"],
        ...rows.map((r) => [
            r.database,
            r.newestFull ? r.newestFull.key.slice(r.newestFull.key.lastIndexOf("/") + 1) : "none",
            r.newestFull ? `${formatAge(r.newestFull.ageHours)} / ${r.objectives.rpoHours}h` : `- / ${r.objectives.rpoHours}h`,
            r.newestFull ? formatBytes(r.newestFull.size) : "-",
            r.newestVerified ? `${r.newestVerified.ageDays}d ago` : "never",
            r.newestVerified?.restoreMinutes !== undefined ? `${restoreCell(r.newestVerified)} / ${r.objectives.rtoMinutes}m` : `- / ${r.objectives.rtoMinutes}m`,
            r.targetsAgree ? `${r.targets.length} agree` : "DISAGREE",
            r.ok ? "ok" : r.newestFull?.anomalous ? "ANOMALOUS" : "PROBLEM",
        ]),
    ];
    const problems = rows.flatMap((r) => r.problems);
    return renderTable(table) + (problems.length ? `\n${problems.map((p) => `  ✗ ${p}`).join("\n")}\n` : "");
}
