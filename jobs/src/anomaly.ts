/**
 * The anomaly guard: a backup of a database that just lost most of a table (a bad migration, a
 * bug, ransomware) must not quietly become "the latest good backup" and push the real ones out
 * of retention. Each full backup is compared with the newest good (non-anomalous) full backup
 * before it; a large drop marks it anomalous. Anomalous backups stay complete and restorable but
 * never count toward keep-min, the stale guard or "newest verified" (see retention.ts), and
 * `status` fails while a database's newest full backup is anomalous.
 *
 * A legitimate drop (an archive job, a purge) is accepted with `backup --accept-anomaly`: that
 * backup records what it accepted and becomes the new baseline. Pure: no I/O.
 */
import { formatBytes } from "./log";
import { Manifest, tableKey, tableLabel } from "./manifest";

export interface AnomalyThresholds {
    /** Flag when the backup is this many percent smaller than the baseline (same format only). */
    sizeDropPercent: number;
    /** Flag a table that lost this many percent of its rows... */
    rowsDropPercent: number;
    /** ...if it had at least this many rows in the baseline. */
    minRows: number;
}

type Comparable = Pick<Manifest, "key" | "size" | "format" | "tables" | "counts" | "scope" | "toc">;

/** Why `current` looks anomalous against `baseline`; empty when it does not (or cannot be compared). */
export function anomalyReasons(current: Comparable, baseline: Comparable | undefined, t: AnomalyThresholds): string[] {
    if (!baseline || current.scope !== "full" || baseline.scope !== "full") {
        return [];
    }
    const reasons: string[] = [];
    if (current.format === baseline.format && baseline.size > 0 && current.size < baseline.size * (1 - t.sizeDropPercent / 100)) {
        reasons.push(`size ${formatBytes(baseline.size)} → ${formatBytes(current.size)} (${percent(current.size, baseline.size)})`);
    }
    if (current.counts.method !== "none" && baseline.counts.method !== "none") {
        // Counts of one method only are comparable: `snapshot-query` (count(*), manifests written
        // before) includes an inheritance parent's children, `dump-stream` (what COPY wrote) holds
        // its own rows only. Across the upgrade, a parent whose rows live in its children would
        // read as "10000 → 0 rows" and every later backup, compared with that last good one, too.
        // A table that is gone is gone whatever counted it.
        const sameMethod = current.counts.method === baseline.counts.method;
        const now = new Map(current.tables.map((x) => [tableKey(x), x.rows]));
        // Still dumped with its data, but counted under the table its COPY loads into (its
        // partition root: dumpstream/counts.ts), as baselines written before that rule did not.
        const stillDumped = new Set((current.toc ?? []).filter((e) => e.desc === "TABLE DATA").map(tableKey));
        const moved = { before: 0, tables: 0 };
        for (const before of baseline.tables) {
            const after = now.get(tableKey(before));
            if (after === undefined && stillDumped.has(tableKey(before))) {
                moved.before += before.rows;
                moved.tables++;
            } else if (after === undefined) {
                reasons.push(`${tableLabel(before)}: table gone (had ${before.rows} rows)`);
            } else if (sameMethod && before.rows >= t.minRows && after < before.rows * (1 - t.rowsDropPercent / 100)) {
                reasons.push(`${tableLabel(before)}: ${before.rows} → ${after} rows (${percent(after, before.rows)})`);
            }
        }
        if (moved.tables > 0) {
            // Their rows are now under tables the baseline did not list: compared as a whole.
            const had = new Set(baseline.tables.map(tableKey));
            const after = current.tables.filter((x) => !had.has(tableKey(x))).reduce((n, x) => n + x.rows, 0);
            if (moved.before >= t.minRows && after < moved.before * (1 - t.rowsDropPercent / 100)) {
                reasons.push(`${moved.tables} partition(s) now counted at their root: ${moved.before} → ${after} rows (${percent(after, moved.before)})`);
            }
        }
    }
    return reasons;
}

function percent(after: number, before: number): string {
    return `${Math.round(((after - before) / before) * 100)} %`;
}
