/** `list` and `prune`: thin I/O around the catalog and the pure retention plan. */
import { BackupEntry, listBackups } from "./catalog";
import { formatBytes, JobError, Logger } from "./log";
import { planPrune, PrunePlan, RetentionPolicy } from "./retention";
import { DeleteOutcome, describeDelete, Target } from "./targets";

export interface ListedBackup {
    target: string;
    database: string;
    name: string;
    size: number;
    takenAt: string;
    ageHours: number;
    /** What it is: full, partial (with its scope), safety, foreign, incomplete, orphan, unreadable. */
    kind: BackupEntry["kind"];
    /** One word for the table: verified / complete / anomalous / partial / safety / foreign / incomplete / orphan / unreadable. */
    status: string;
    scope?: string;
    purpose?: string;
    anomaly?: string[];
    problem?: string;
}

/** One word for a backup's state, as `list` and `status` print it. Pure. */
export function statusWord(e: BackupEntry): string {
    if (e.kind === "full") {
        return e.anomalous ? "anomalous" : e.verified ? "verified" : "complete";
    }
    return e.kind;
}

export async function collectList(targets: Target[], database: string | undefined, now: Date, o: { signingKey?: string } = {}): Promise<ListedBackup[]> {
    const rows: ListedBackup[] = [];
    for (const t of targets) {
        let entries: BackupEntry[];
        try {
            entries = await listBackups(t, database, { manifests: true, signingKey: o.signingKey });
        } catch (e) {
            throw new JobError(`cannot list ${t.location}: ${(e as Error).message}`);
        }
        for (const e of entries) {
            rows.push({
                target: t.kind,
                database: e.database,
                name: e.key.slice(e.key.indexOf("/") + 1),
                size: e.size,
                takenAt: e.takenAt.toISOString(),
                ageHours: Math.round(((now.getTime() - e.takenAt.getTime()) / 3_600_000) * 10) / 10,
                kind: e.kind,
                status: statusWord(e),
                ...(e.manifest ? { scope: e.manifest.scope, purpose: e.manifest.purpose } : {}),
                ...(e.manifest?.anomaly ? { anomaly: e.manifest.anomaly.reasons } : {}),
                ...(e.problem ? { problem: e.problem } : {}),
            });
        }
    }
    // Per database and target, newest first.
    return rows.sort((a, b) => a.database.localeCompare(b.database) || a.target.localeCompare(b.target) || b.takenAt.localeCompare(a.takenAt));
}

export function formatAge(hours: number): string {
    return hours < 48 ? `${hours.toFixed(1)}h` : `${(hours / 24).toFixed(1)}d`;
}

export function renderList(rows: ListedBackup[]): string {
    if (rows.length === 0) {
        return "no backups found\n";
    }
    const detail = (r: ListedBackup) =>
        r.kind === "partial" ? r.scope ?? "" : r.kind === "foreign" ? "not written by kx-backup: kx-backup adopt" : r.anomaly ? r.anomaly.join("; ") : r.problem ?? (r.purpose === "adopted" ? "adopted" : "");
    const table = [["DATABASE", "TARGET", "NAME", "SIZE", "AGE", "STATUS", "NOTE"], ...rows.map((r) => [r.database, r.target, r.name, formatBytes(r.size), formatAge(r.ageHours), r.status, detail(r)])];
    return renderTable(table);
}

/** Columns padded to their widest cell. */
export function renderTable(table: string[][]): string {
    const widths = table[0].map((_, i) => Math.max(...table.map((row) => (row[i] ?? "").length)));
    return table.map((row) => row.map((c, i) => (c ?? "").padEnd(widths[i])).join("  ").trimEnd()).join("\n") + "\n";
}

export interface PruneReport {
    target: string;
    database: string;
    plan: PrunePlan;
    /** Gone for good. */
    deleted: string[];
    /** No longer listed, but the store keeps the data (delete marker, soft delete, previous version, lock): `kx-backup undelete` can bring them back. */
    hidden: { key: string; detail: string; retainedUntil?: string }[];
    /** Refused by the store's lock (Azure immutability): still listed, tried again on the next run. */
    retained: { key: string; detail: string; retainedUntil?: string }[];
    errors: string[];
}

/** One outcome for a backup's objects: a refusal first, then anything kept; "deleted" only if nothing remains. */
function backupOutcome(outcomes: DeleteOutcome[]): DeleteOutcome {
    return outcomes.find((o) => o.result === "retained") ?? outcomes.find((o) => o.result === "hidden") ?? outcomes.find((o) => o.result === "deleted") ?? { result: "absent" };
}

export async function runPrune(
    targets: Target[],
    database: string | undefined,
    policy: RetentionPolicy,
    opts: { dryRun: boolean; now: Date; signingKey?: string },
    log: Logger,
): Promise<PruneReport[]> {
    const reports: PruneReport[] = [];
    for (const t of targets) {
        const entries = await listBackups(t, database, { manifests: true, signingKey: opts.signingKey }).catch((e) => {
            throw new JobError(`cannot list ${t.location}: ${(e as Error).message}`);
        });
        const databases = [...new Set(entries.map((e) => e.database))].sort();
        for (const db of databases) {
            const plan = planPrune(entries.filter((e) => e.database === db), policy, opts.now);
            const report: PruneReport = { target: t.kind, database: db, plan, deleted: [], hidden: [], retained: [], errors: [] };
            reports.push(report);
            for (const note of plan.notes) {
                log.warn(`prune ${db} on ${t.kind}: ${note}`, { event: "prune.note", database: db, target: t.kind });
            }
            if (plan.stale) {
                log.warn(`prune ${db} on ${t.kind}: ${plan.stale}`, { event: "prune.stale", database: db, target: t.kind });
                continue;
            }
            for (const action of plan.delete) {
                if (opts.dryRun) {
                    log.info(`would delete ${action.key} from ${t.kind} (${action.reason})`, { event: "prune.plan", database: db, target: t.kind, key: action.key });
                    continue;
                }
                try {
                    const outcomes: DeleteOutcome[] = [];
                    for (const obj of action.objects) {
                        outcomes.push(await t.delete(obj));
                    }
                    const outcome = backupOutcome(outcomes);
                    const detail = describeDelete(outcome);
                    if (outcome.result === "hidden" || outcome.result === "retained") {
                        report[outcome.result].push({ key: action.key, detail, retainedUntil: outcome.retainedUntil?.toISOString() });
                        log.info(`${action.key} on ${t.kind} (${action.reason}): ${detail}`, {
                            event: `prune.${outcome.result}`, database: db, target: t.kind, key: action.key, retainedUntil: outcome.retainedUntil?.toISOString(),
                        });
                    } else {
                        report.deleted.push(action.key);
                        log.info(`deleted ${action.key} from ${t.kind} (${action.reason})${outcome.result === "deleted" ? (outcome.note ? `: ${detail}` : "") : ": it was already gone"}`, {
                            event: "prune.delete", database: db, target: t.kind, key: action.key,
                        });
                    }
                } catch (e) {
                    report.errors.push(`${action.key}: ${(e as Error).message}`);
                    log.error(`could not delete ${action.key} from ${t.kind}: ${(e as Error).message}`, { event: "prune.error", target: t.kind });
                }
            }
            const done = opts.dryRun
                ? `would delete ${plan.delete.length}`
                : `deleted ${report.deleted.length}` +
                    (report.hidden.length > 0 ? `, hid ${report.hidden.length} (the store keeps their data)` : "") +
                    (report.retained.length > 0 ? `, ${report.retained.length} refused by a lock (still listed)` : "");
            log.info(
                `prune ${db} on ${t.kind}: ${done}, kept ${plan.keep.length}`,
                { event: "prune.summary", database: db, target: t.kind, dryRun: opts.dryRun, deleted: report.deleted.length, hidden: report.hidden.length, retained: report.retained.length },
            );
        }
    }
    return reports;
}

/** Prune fails (for a CronJob to notice) when backups look stale or a delete failed. */
export function pruneProblems(reports: PruneReport[]): string[] {
    return reports.flatMap((r) => [
        ...(r.plan.stale ? [`${r.database} on ${r.target}: ${r.plan.stale}`] : []),
        ...r.errors.map((e) => `${r.database} on ${r.target}: ${e}`),
    ]);
}
