/**
 * `kx-backup status`: is every database inside its RPO, with a recent verified restore inside its
 * RTO? Read from the targets themselves (manifests and verify records), so it answers the same on
 * a laptop as in the cluster. `assessStatus` is pure: every rule is tested without storage.
 */
import { BackupEntry, CLOCK_SKEW_MS, EntryKind, fromTheFuture, futureNote, listBackups } from "./catalog";
import { formatAge, renderTable } from "./commands";
import { formatBytes, formatDuration, JobError } from "./log";
import { MANIFEST_KIND } from "./manifest";
import { CopyTiming, isTargetKind, MeasuredRestore, measuredRestore, newestByCopy, TimedRecord } from "./restoreTimes";
import { Target, TARGET_KINDS, TargetKind } from "./targets";

export interface Objectives {
    rpoHours: number;
    rtoMinutes: number;
    verifyMaxAgeDays: number;
}

/** What a verify record says, as far as status needs it (the text came from storage: checked, not trusted). */
export interface VerifyRecord extends TimedRecord {
    finishedAt: string;
}

export interface TargetView {
    target: string;
    /** Backups described with their manifests, newest first; absent when the target could not be read. */
    entries?: BackupEntry[];
    error?: string;
    /** Verify records by backup key (every verified backup's, as the catalog checked them). */
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
     * The newest verified good backup. target: where its record was read. restoredFrom: the copy
     * that verify restored and timed (verify rotates through the targets).
     */
    newestVerified?: { key: string; target: string; restoredFrom?: string; verifiedAt: string; ageDays: number } & RestoreJudgement;
    /**
     * The newest timed restore of each copy (carried from record to record), each judged against
     * the RTO: after the backup volume is lost, a restore is one from S3 or Azure.
     */
    restoreByCopy: Partial<Record<TargetKind, { key: string; verifiedAt: string; ageDays: number; stale?: boolean } & RestoreJudgement>>;
    /**
     * Configured copies no restore has been timed from yet: verify times one copy per run, the
     * never-timed first, so this empties within a round (after a new target, or a new signing key
     * that leaves the older records unread). Shown, not a problem, unless no configured copy has a time.
     */
    untimedCopies: TargetKind[];
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

/**
 * restoreMinutes: end to end (restoreEndToEnd true), or pg_restore alone in a record from before
 * that was measured; restoreUnusable: why neither. overRto is judged on the exact time, as the
 * alert judges the pushed gauge (minutes are shown rounded).
 */
export interface RestoreJudgement {
    restoreMinutes?: number;
    restoreEndToEnd?: boolean;
    overRto?: boolean;
    restoreUnusable?: string;
}

function judged(measured: MeasuredRestore, o: Objectives): RestoreJudgement {
    return "ms" in measured
        ? { restoreMinutes: round1(measured.ms / 60_000), restoreEndToEnd: measured.endToEnd, overRto: measured.ms > o.rtoMinutes * 60_000 }
        : { restoreUnusable: measured.unusable };
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

    // The newest good full backup with a verify record, on any target; and every such record, for each copy's newest time.
    let newestVerified: DatabaseStatus["newestVerified"];
    const records: TimedRecord[] = [];
    for (const v of readable) {
        for (const e of v.entries!) {
            const record = e.kind === "full" && !e.anomalous && e.verified && !fromTheFuture(e, now) ? v.verifies.get(e.key) : undefined;
            const at = record ? new Date(record.finishedAt) : undefined;
            if (at && fromTheFuture({ takenAt: at }, now)) {
                // A verify pod whose clock ran ahead would keep "verify age" met until the clock caught up.
                problems.push(`${database}: clock: the restore test of ${e.key} on ${v.target} is ${futureNote({ takenAt: at }, now).replace("never counted as the newest or a good backup", "not counted")}`);
                continue;
            }
            if (!record || !at || Number.isNaN(at.getTime())) {
                continue;
            }
            // The catalog checked the record is about this backup: its key is the entry's.
            records.push({ ...record, key: e.key });
            if (!newestVerified || at.toISOString() > newestVerified.verifiedAt) {
                const measured = measuredRestore(record);
                newestVerified = {
                    key: e.key,
                    target: v.target,
                    verifiedAt: at.toISOString(),
                    ageDays: round1((now.getTime() - at.getTime()) / (24 * HOUR)),
                    // Only a target kind is shown: the record's text reaches the terminal and the logs.
                    ...(isTargetKind(record.target) ? { restoredFrom: record.target } : {}),
                    ...judged(measured, o),
                };
            }
        }
    }
    // Every copy's newest time (within the clock skew tolerated above); judged for those configured here.
    const configured = TARGET_KINDS.filter((k) => views.some((v) => v.target === k));
    const timed = newestByCopy(records, { database, notAfter: new Date(now.getTime() + CLOCK_SKEW_MS) });
    const restoreByCopy: DatabaseStatus["restoreByCopy"] = {};
    for (const [kind, t] of (Object.entries(timed) as [TargetKind, CopyTiming][]).filter(([k]) => configured.includes(k))) {
        const at = new Date(t.finishedAt);
        restoreByCopy[kind] = { key: t.key, verifiedAt: at.toISOString(), ageDays: round1((now.getTime() - at.getTime()) / (24 * HOUR)), ...judged(measuredRestore(t), o) };
    }
    if (!newestVerified) {
        problems.push(`${database}: verify age: no backup has passed a restore test (allowed age ${o.verifyMaxAgeDays} d)`);
    } else if (newestVerified.ageDays > o.verifyMaxAgeDays) {
        problems.push(`${database}: verify age: the last restore test (${newestVerified.key}) was ${newestVerified.ageDays} d ago (allowed ${o.verifyMaxAgeDays} d)`);
    }
    // The RTO of every copy: a restore after the backup volume is lost is one from S3 or Azure,
    // however fast the local copy restored last night. The newest record's own time is its
    // copy's; one whose copy is no target kind is judged on its own.
    const rto = (who: string, t: RestoreJudgement & { key: string; ageDays: number }) => {
        if (t.restoreUnusable !== undefined) {
            problems.push(`${database}: RTO: the record of the last restore test${who} (${t.key}) holds no usable restore time (${t.restoreUnusable}): the RTO cannot be judged`);
        } else if (t.restoreMinutes !== undefined && t.overRto) {
            problems.push(`${database}: RTO: the last restore test${who} (${t.key}, ${t.ageDays} d ago) took ${formatDuration(t.restoreMinutes * 60_000)}` +
                `${t.restoreEndToEnd ? " end to end (fetch, checks, pg_restore, comparison)" : " in pg_restore alone (a record from before the whole restore was timed)"} (RTO ${o.rtoMinutes} min)`);
        }
    };
    // The newest record is always judged: here when its time is not already its copy's in
    // restoreByCopy (no target kind, a date newestByCopy does not read), never for a copy no
    // longer configured. Restored and timed only from such copies (the PVC is gone), the RTO
    // of a restore from what is left is unknown, and says so rather than pass.
    if (newestVerified) {
        const from = newestVerified.restoredFrom as TargetKind | undefined;
        const same = from !== undefined && restoreByCopy[from]?.key === newestVerified.key && restoreByCopy[from]?.verifiedAt === newestVerified.verifiedAt;
        if (from === undefined) {
            rto("", newestVerified);
        } else if (configured.includes(from) && !same) {
            rto(` of the copy on ${from}`, newestVerified);
        } else if (!configured.includes(from) && configured.length > 0 && configured.every((k) => !restoreByCopy[k])) {
            problems.push(`${database}: RTO: no restore from ${configured.join(" or ")} has been timed (the last restore test restored the copy on ${from}, ` +
                `which is not configured here): run kx-backup verify --from ${configured[0]}`);
        }
    }
    // verify rotates through the copies it has (the records say which: a laptop reading S3 alone
    // judges the cluster's rotation): each is timed every verifyMaxAgeDays × copies while
    // verify keeps its age, and one more round allows for a failed run. An older time says little
    // of today's restore (the data grew, that copy's runs kept failing): a problem, however fast.
    // Counted from the copies records timed (as newestByCopy takes them) and those configured
    // here: nothing a record merely lists stretches the window.
    const rotated = Math.max(1, new Set<string>([...configured, ...Object.keys(timed)]).size);
    const window = o.verifyMaxAgeDays * (rotated + 1);
    for (const kind of TARGET_KINDS) {
        const t = restoreByCopy[kind];
        if (!t) {
            continue;
        }
        rto(` of the copy on ${kind}`, t);
        if (t.ageDays > window) {
            t.stale = true;
            problems.push(`${database}: RTO: the newest timed restore of the copy on ${kind} (${t.key}) is ${t.ageDays} d old: verify rotates through ` +
                `${rotated} cop${rotated === 1 ? "y" : "ies"}, so each should be timed within ${window} d (a round more for a failed run); run kx-backup verify --from ${kind}`);
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
    return { database, objectives: o, newestFull, newestVerified, restoreByCopy, untimedCopies: configured.filter((k) => !restoreByCopy[k]), targets, targetsAgree, trend, problems, ok: problems.length === 0 };
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
        // Every verified backup's record (each copy's newest time may be in an older one), as the
        // catalog read and checked it (signature and all), never a second read that could differ.
        for (const e of list) {
            if (e.verifyRecord === undefined) {
                continue;
            }
            try {
                const record = JSON.parse(e.verifyRecord) as VerifyRecord;
                if (record && typeof record === "object") {
                    verifies.set(e.key, record);
                }
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

/**
 * "local 4m0s, s3 12m0s, azure -": each configured copy's newest timed restore, "(pg_restore
 * only)" where that is all its record has, "?" where it cannot be judged, "-" where none is
 * timed yet; a newest record whose copy is no target kind, its time alone.
 */
function restoreCell(r: DatabaseStatus): string | undefined {
    const time = (t: RestoreJudgement) => `${formatDuration(t.restoreMinutes! * 60_000)}${t.restoreEndToEnd ? "" : " (pg_restore only)"}`;
    const copies = TARGET_KINDS.flatMap((k) => {
        const t = r.restoreByCopy[k];
        return t && t.restoreMinutes !== undefined ? [`${k} ${time(t)}`] : t ? [`${k} ?`] : r.untimedCopies.includes(k) ? [`${k} -`] : [];
    });
    if (copies.some((c) => !c.endsWith(" -"))) {
        return copies.join(", ");
    }
    return r.newestVerified?.restoreMinutes !== undefined ? time(r.newestVerified) : undefined;
}

/** The terminal table: one row per database, then one line per problem. */
export function renderStatus(rows: DatabaseStatus[]): string {
    const table = [
        ["DATABASE", "NEWEST FULL", "AGE / RPO", "SIZE", "VERIFIED", "RESTORE / RTO", "TARGETS", "STATE"],
        ...rows.map((r) => [
            r.database,
            r.newestFull ? r.newestFull.key.slice(r.newestFull.key.lastIndexOf("/") + 1) : "none",
            r.newestFull ? `${formatAge(r.newestFull.ageHours)} / ${r.objectives.rpoHours}h` : `- / ${r.objectives.rpoHours}h`,
            r.newestFull ? formatBytes(r.newestFull.size) : "-",
            r.newestVerified ? `${r.newestVerified.ageDays}d ago` : "never",
            `${restoreCell(r) ?? "-"} / ${r.objectives.rtoMinutes}m`,
            r.targetsAgree ? `${r.targets.length} agree` : "DISAGREE",
            r.ok ? "ok" : r.newestFull?.anomalous ? "ANOMALOUS" : "PROBLEM",
        ]),
    ];
    const problems = rows.flatMap((r) => r.problems);
    return renderTable(table) + (problems.length ? `\n${problems.map((p) => `  ✗ ${p}`).join("\n")}\n` : "");
}
