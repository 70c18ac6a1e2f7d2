/**
 * Restoring selected tables into an existing database (the runbook's §4.3): exactly the dump's
 * entries for the tables named (resolved in toc.ts; `ledger.entries` never touches
 * `public.entries`), in one transaction on one connection: empty them, load them, compare their
 * counts with the backup's snapshot, commit. Any failure, a killed pg_restore included, rolls
 * back to what was there. The rows come as pg_restore's text through script.ts, never psql.
 */
import { Client } from "pg";
import { connect, rowCountSql, sqlTable } from "../db";
import { JobError, Logger } from "../log";
import { tableKey, tableLabel } from "../manifest";
import { Settings } from "../settings";
import { throwIfStopping } from "../shutdown";
import { Prepared, writeUseList } from "./prepare";
import { runScript } from "./script";
import { tableEntries, TableRef } from "./toc";
import { startTool } from "./tools";

export interface TablesResult {
    tables: TableRef[];
    rows: number;
    counts: Record<string, { restored: number; expected?: number }>;
}


async function existing(c: Client, tables: readonly TableRef[]): Promise<Set<string>> {
    const r = await c.query<TableRef>(
        "SELECT s AS schema, t AS name FROM unnest($1::text[], $2::text[]) AS x(s, t) WHERE to_regclass(format('%I.%I', s, t)) IS NOT NULL",
        [tables.map((t) => t.schema), tables.map((t) => t.name)],
    );
    return new Set(r.rows.map(tableKey));
}

/** Refusals that need the target: exit 2, nothing touched. */
export async function checkTables(server: Settings, into: string, p: Prepared, tables: readonly TableRef[], dataOnly: boolean): Promise<void> {
    const withData = new Set(tableEntries(p.toc, tables, ["TABLE DATA"]).map(tableKey));
    const noData = tables.filter((t) => !withData.has(tableKey(t)));
    if (noData.length > 0) {
        throw new JobError(`the backup holds no data for ${noData.map((t) => tableLabel(t)).join(", ")}`, 2);
    }
    const manifest = p.located.manifest;
    if (manifest.counts.method === "dump-stream") {
        const counted = new Set(manifest.tables.map(tableKey));
        const unchecked = tables.filter((t) => !counted.has(tableKey(t)));
        if (unchecked.length > 0) {
            // A partition loaded through its partition root: its rows would go wherever the root
            // routes them (other partitions included), and nothing could prove the result.
            throw new JobError(
                `the backup records no row count of ${unchecked.map((t) => tableLabel(t)).join(", ")} on its own: its rows load through its partition root ` +
                    "(pg_dump does so for a tree hash-partitioned on an enum), so restoring it alone could put rows into other partitions unchecked; restore the whole database instead",
                2,
            );
        }
    }
    const defined = new Set(tableEntries(p.toc, tables, ["TABLE"]).map(tableKey));
    const undefinedHere = tables.filter((t) => !defined.has(tableKey(t)));
    if (!dataOnly && undefinedHere.length > 0) {
        throw new JobError(`the backup holds the rows of ${undefinedHere.map((t) => tableLabel(t)).join(", ")} but not the table's definition (a data-only backup): add --data-only to replace the rows of an existing table`, 2);
    }
    const c = await connect(server, into);
    try {
        const have = await existing(c, tables);
        const wrong = tables.filter((t) => have.has(tableKey(t)) !== dataOnly);
        if (wrong.length > 0) {
            throw new JobError(
                dataOnly
                    ? `${wrong.map((t) => tableLabel(t)).join(", ")} do(es) not exist in ${into}: restore without --data-only to create them`
                    : `${wrong.map((t) => tableLabel(t)).join(", ")} already exist(s) in ${into}: add --data-only to replace the rows`,
                2,
            );
        }
    } finally {
        await c.end().catch(() => undefined);
    }
}

export async function restoreTables(server: Settings, into: string, p: Prepared, tables: readonly TableRef[], dataOnly: boolean, log: Logger): Promise<TablesResult> {
    const key = p.located.entry.key;
    const list = writeUseList(p.fetched, "tables", tableEntries(p.toc, tables, dataOnly ? ["TABLE DATA"] : ["TABLE", "TABLE DATA"]));
    const expected = new Map(p.located.manifest.counts.method === "none" ? [] : p.located.manifest.tables.map((t) => [tableKey(t), t.rows]));
    const c = await connect(server, into);
    try {
        await c.query("BEGIN");
        if (dataOnly) {
            // Emptied with triggers (foreign keys included) off, as the rows come back whole: rows
            // elsewhere that point at these match again once the data is back. Needs a superuser.
            await c.query("SET LOCAL session_replication_role = replica");
            // ONLY: without it, emptying an inheritance parent empties its children too, while
            // pg_restore brings back the parent's own rows alone (its COPY holds no child's) and
            // the count check, FROM ONLY as the dump counted, would pass with the children gone.
            for (const t of tables) {
                await c.query(`DELETE FROM ONLY ${sqlTable(t)}`);
            }
        }
        const restore = startTool(p.tools, "pg_restore", [...(dataOnly ? ["--data-only"] : []), "--use-list", list, "--file", "-", p.fetched.input], undefined, `pg_restore of ${tables.map((t) => tableLabel(t)).join(", ")} from ${key}`, "pipe");
        const loaded = await Promise.all([runScript(c, restore.stdout!, { label: `pg_restore output of ${key}`, inTransaction: true }), restore.exited]).catch((e) => {
            restore.child.kill("SIGTERM");
            throw e;
        });
        const counts: TablesResult["counts"] = {};
        const wrong: string[] = [];
        for (const t of tables) {
            const r = await c.query<{ n: string }>(rowCountSql(t, p.located.manifest.counts.method));
            const want = expected.get(tableKey(t));
            counts[tableLabel(t)] = { restored: Number(r.rows[0].n), expected: want };
            if (want !== undefined && Number(r.rows[0].n) !== want) {
                wrong.push(`${tableLabel(t)} ${r.rows[0].n} ≠ ${want}`);
            }
        }
        if (wrong.length > 0) {
            throw new JobError(`row counts differ from the backup's snapshot: ${wrong.join("; ")}`);
        }
        // Stopped while loading: roll back rather than commit what nobody waits for any more.
        throwIfStopping();
        await c.query("COMMIT");
        log.info(`restored ${tables.map((t) => tableLabel(t)).join(", ")} into ${into} in one transaction: ${loaded[0].rows} row(s), counts match`, { event: "restore.tables", into, rows: loaded[0].rows });
        return { tables: [...tables], rows: loaded[0].rows, counts };
    } catch (e) {
        await c.query("ROLLBACK").catch(() => undefined);
        throw e;
    } finally {
        await c.end().catch(() => undefined);
    }
}
