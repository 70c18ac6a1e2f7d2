/**
 * Row counts taken while a restore is still running. pg_restore with `--jobs` > 1 and `--verbose`
 * says `finished item <id> TABLE DATA <name>` once a worker has committed that table's COPY; from
 * then on nothing a restore does adds or removes its rows (indexes, constraints and triggers come
 * after, and fire on nothing already loaded), so its count can be taken at once, on one
 * connection of its own, while the other tables load, instead of after the last one: the
 * post-restore counts then wait only for the tables that finished last.
 *
 * Counted early, and only then: a table the manifest counts as its own rows (method dump-stream,
 * `count(*) FROM ONLY`), that is an ordinary table and not a partition. A partition may still
 * receive rows another entry loads through its partition root, and a `snapshot-query` count
 * includes inheritance children that may still be loading; those are counted after the restore,
 * as before. An early count that fails for any reason is simply taken again afterwards.
 */
import { Client } from "pg";
import { rowCountSql } from "../db";
import { Manifest, tableKey, TocEntry } from "../manifest";

/** The `finished item` id of one line of pg_restore --verbose, when it is a TABLE DATA entry. Pure. */
export function finishedTableData(line: string): number | undefined {
    const m = /^pg_restore: finished item (\d+) TABLE DATA /.exec(line);
    return m ? Number(m[1]) : undefined;
}

/**
 * pg_restore --verbose's progress lines: not kept for a failure message (a table named
 * `failed_logins` in a progress line must not stand in for the error). Pure.
 */
export function isRestoreProgress(line: string): boolean {
    // pg_restore 15's info messages (`strings pg_restore`); an error line starts `pg_restore: error:`.
    return /^pg_restore: (processing|launching|finished|creating|connecting|entering|executing|transferring|reducing|dropping|disabling triggers|enabling triggers|skipping item|implied data-only|restoring large object with OID|restored \d+ large object)/.test(line);
}

/** What was counted during the restore, when it ended. */
export interface EarlyCounts {
    /** Rows counted, by tableKey. */
    done: ReadonlyMap<string, number>;
    /** The count still running when the restore ended: its rows, or undefined if it could not be taken. */
    running?: { key: string; rows: Promise<number | undefined> };
}

export class CountsDuringRestore {
    private readonly done = new Map<string, number>();
    private running?: EarlyCounts["running"];
    /** TABLE DATA entry id → the manifest table it loads, for the tables that may be counted early. */
    private readonly eligible = new Map<number, { schema: string; name: string }>();
    private client?: Promise<Client>;
    private queue: Promise<void> = Promise.resolve();
    private stopped = false;

    constructor(manifest: Pick<Manifest, "tables" | "counts">, toc: readonly TocEntry[], private readonly connect: () => Promise<Client>) {
        if (manifest.counts.method !== "dump-stream") {
            return;
        }
        const tables = new Map(manifest.tables.map((t) => [tableKey(t), t]));
        for (const e of toc) {
            const t = e.desc === "TABLE DATA" ? tables.get(tableKey(e)) : undefined;
            if (t) {
                this.eligible.set(e.id, t);
            }
        }
    }

    /** Whether any table may be counted early (else the restore needs no --verbose). */
    get enabled(): boolean {
        return this.eligible.size > 0;
    }

    /** pg_restore reported this TOC entry done: counts its table, after any count already queued. */
    loaded(id: number): void {
        const t = this.eligible.get(id);
        if (!t || this.stopped) {
            return;
        }
        this.eligible.delete(id);
        const key = tableKey(t);
        this.queue = this.queue.then(async () => {
            if (this.stopped) {
                return;
            }
            const rows = this.count(t);
            this.running = { key, rows };
            const n = await rows;
            this.running = undefined;
            if (n !== undefined) {
                this.done.set(key, n);
            }
        });
    }

    private async count(t: { schema: string; name: string }): Promise<number | undefined> {
        try {
            const c = await (this.client ??= this.connect());
            const kind = await c.query<{ ok: boolean }>(
                "SELECT c.relkind = 'r' AND NOT c.relispartition AS ok FROM pg_class c WHERE c.oid = to_regclass(format('%I.%I', $1::text, $2::text))",
                [t.schema, t.name],
            );
            if (kind.rows[0]?.ok !== true) {
                return undefined;
            }
            const r = await c.query<{ n: string }>(rowCountSql(t, "dump-stream"));
            return Number(r.rows[0].n);
        } catch {
            return undefined;
        }
    }

    /**
     * The restore has ended: no count starts after this (those queued are taken afterwards, with
     * the others). Returns the counts taken, and the one still running.
     */
    stop(): EarlyCounts {
        this.stopped = true;
        return { done: new Map(this.done), ...(this.running ? { running: this.running } : {}) };
    }

    /**
     * Stops and ends the connection: after the count running, if any (`wait`, the default), or at
     * once (a failed restore: a count of a large table is not worth waiting for, and ending its
     * connection ends it). Safe more than once.
     */
    async end(wait = true): Promise<void> {
        this.stopped = true;
        if (wait) {
            await this.queue;
        }
        const c = await this.client?.catch(() => undefined);
        this.client = undefined;
        await c?.end().catch(() => undefined);
    }
}
