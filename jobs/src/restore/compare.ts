/**
 * Checking a restored database against its backup: row counts (the manifest's snapshot), the
 * schema and the database's own properties (a `pg_dump --schema-only --create` of the restored
 * database against the dump's own text), sequences' values, large objects. Each check says what
 * it compared; none copies row data into its message.
 */
import { Client } from "pg";
import { dbnameArg, rowCountSql, sqlTable, TableRef } from "../db";
import { Manifest, tableKey, tableLabel } from "../manifest";
import { ClientTools } from "../pgtools";
import { Settings } from "../settings";
import { settled } from "../settled";
import { isKeyword, splitStatements } from "./sqlLexer";
import { toolText } from "./tools";

export type CheckName = "counts" | "schema" | "properties" | "sequences" | "large-objects";

export interface CheckResult {
    check: CheckName;
    ok: boolean;
    /** True when the check could not run for this backup (the detail says why). */
    skipped?: boolean;
    detail: string;
}

/** What the backup says the restored database must hold, read from the dump before the restore. */
export interface Expected {
    /** `pg_restore --schema-only --create` of the dump, or undefined (plain format). */
    schemaSql?: string;
    /** How the dump writes the database's name (see normalizeSchema). */
    databaseText?: string;
    /** Why the schema cannot be compared, when it cannot. */
    schemaSkip?: string;
    sequences?: SequenceValue[];
    largeObjects?: string[];
}

export interface SequenceValue {
    /** The sequence as pg_dump names it in setval(): a qualified, quoted-where-needed name. */
    name: string;
    value: string;
    called: boolean;
}

/** The setval() calls of pg_restore's output for SEQUENCE SET entries. Pure. */
export function parseSequenceValues(sql: string): SequenceValue[] {
    return splitStatements(sql).flatMap((s) => {
        const t = s.tokens;
        const setval = t.findIndex((x) => isKeyword(x, "setval"));
        if (!isKeyword(t[0], "select") || setval < 0) {
            return [];
        }
        const args = t.slice(setval + 2).filter((x) => !(x.t === "op"));
        const [name, value, called] = args;
        if (name?.t !== "string" || value?.t !== "num") {
            return [];
        }
        return [{ name: name.v.replace(/''/g, "'"), value: value.v, called: !called || isKeyword(called, "true") }];
    });
}

/** Lines of a schema dump that must match: no comments, blank or psql lines, the database's name neutral. Pure. */
export function normalizeSchema(sql: string, databaseText: string): string[] {
    const name = new RegExp(`\\bDATABASE ${databaseText.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=[\\s;]|$)`, "g");
    return sql
        .split("\n")
        .map((l) => l.replace(/\s+$/, ""))
        .filter((l) => l !== "" && !l.startsWith("--") && !/^\\(restrict|unrestrict|connect|encoding)\b/.test(l) && !/^REFRESH MATERIALIZED VIEW /.test(l))
        .map((l) => l.replace(name, "DATABASE <db>"))
        // pg_dump lists a policy's roles in catalog order, which follows their OIDs: the order the
        // roles were created on that server, not a property of the policy.
        .map((l) => l.replace(/^(CREATE POLICY .*? TO )(.+?)( USING \(| WITH CHECK \(|;$)/, (_m, head: string, roles: string, tail: string) => `${head}${roles.split(", ").sort().join(", ")}${tail}`));
}

/** Lines of `a` not in `b`, as a multiset difference (order differences from OID ties are not differences). Pure. */
export function missingLines(a: readonly string[], b: readonly string[]): string[] {
    const left = new Map<string, number>();
    for (const l of b) {
        left.set(l, (left.get(l) ?? 0) + 1);
    }
    const out: string[] = [];
    for (const l of a) {
        const n = left.get(l) ?? 0;
        if (n > 0) {
            left.set(l, n - 1);
        } else {
            out.push(l);
        }
    }
    return out;
}

const isProperty = (l: string) => l.includes("DATABASE <db>");

function describeDiff(what: string, missing: string[], extra: string[]): CheckResult["detail"] {
    const first = missing[0] !== undefined ? `missing: ${missing[0].slice(0, 160)}` : `unexpected: ${extra[0].slice(0, 160)}`;
    return `${what} differ${what.endsWith("s") ? "" : "s"} from the dump: ${missing.length} line(s) missing, ${extra.length} unexpected; first ${first}`;
}

/** Schema and database properties: the restored database dumped again, against the dump. */
export async function compareSchema(tools: ClientTools, server: Settings, database: string, expected: Expected): Promise<CheckResult[]> {
    if (!expected.schemaSql || !expected.databaseText) {
        const detail = expected.schemaSkip ?? "not compared";
        return [{ check: "schema", ok: true, skipped: true, detail }, { check: "properties", ok: true, skipped: true, detail }];
    }
    const actualSql = await toolText(tools, "pg_dump", ["--schema-only", "--create", "--no-password", "--dbname", dbnameArg(database)], { ...server, pgDatabase: database }, `pg_dump --schema-only of ${database}`);
    const want = normalizeSchema(expected.schemaSql, expected.databaseText);
    const got = normalizeSchema(actualSql, database);
    const results: CheckResult[] = [];
    for (const [check, pick, what] of [["properties", isProperty, "database properties"], ["schema", (l: string) => !isProperty(l), "schema"]] as const) {
        const missing = missingLines(want.filter(pick), got.filter(pick));
        const extra = missingLines(got.filter(pick), want.filter(pick));
        const lines = want.filter(pick).length;
        results.push(missing.length + extra.length === 0
            ? { check, ok: true, detail: `${lines} line(s) of ${what} identical to the dump's` }
            : { check, ok: false, detail: describeDiff(what, missing, extra) });
    }
    return results;
}

/**
 * The partitioned tables among `tables` in the restored database, each with the tables of its
 * partition tree below it. A dump counts the rows a partition's COPY loads into its root (load via
 * partition root) against the root (see dumpstream/copystmt.ts): those rows may land in any
 * partition of the restored tree, so only the tree as a whole can be compared.
 */
async function partitionTrees(client: Client, tables: readonly TableRef[]): Promise<Map<string, string[]>> {
    const r = await client.query<{ s: string; t: string; ds: string; dt: string }>(
        `SELECT x.s, x.t, n.nspname AS ds, c.relname AS dt
           FROM unnest($1::text[], $2::text[]) AS x(s, t)
           JOIN pg_class p ON p.oid = to_regclass(format('%I.%I', x.s, x.t)) AND p.relkind = 'p'
           CROSS JOIN LATERAL pg_partition_tree(p.oid) tree
           JOIN pg_class c ON c.oid = tree.relid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE tree.relid <> p.oid`,
        [tables.map((t) => t.schema), tables.map((t) => t.name)],
    );
    const trees = new Map<string, string[]>();
    for (const row of r.rows) {
        const key = tableKey({ schema: row.s, name: row.t });
        const below = trees.get(key) ?? [];
        below.push(tableKey({ schema: row.ds, name: row.dt }));
        trees.set(key, below);
    }
    return trees;
}

/**
 * What to count for each of the manifest's tables, and what it must come to. Pure: a table's own
 * rows, except for a partitioned table (which has none of its own: the manifest's rows for it were
 * loaded through it), whose whole tree must hold its rows plus those the manifest lists for the
 * partitions in the tree.
 */
export function countChecks(manifest: Pick<Manifest, "tables" | "counts">, trees: ReadonlyMap<string, readonly string[]>): { table: TableRef; sql: string; expected: number; tree: boolean }[] {
    const method = manifest.counts.method;
    const rows = new Map(manifest.tables.map((t) => [tableKey(t), t.rows]));
    return manifest.tables.map((t) => {
        const below = method === "dump-stream" ? trees.get(tableKey(t)) : undefined;
        if (!below) {
            return { table: t, sql: rowCountSql(t, method), expected: t.rows, tree: false };
        }
        const expected = below.reduce((sum, k) => sum + (rows.get(k) ?? 0), t.rows);
        return { table: t, sql: `SELECT count(*)::text AS n FROM ${sqlTable(t)}`, expected, tree: true };
    });
}

/**
 * Row counts of every table against the manifest's snapshot. Every count is a full scan: with
 * more than one connection they run side by side, the largest tables first, and the findings are
 * reported in the manifest's order whatever order the scans finish in.
 */
export async function compareCounts(clients: Client | readonly Client[], manifest: Manifest): Promise<CheckResult> {
    if (manifest.counts.method === "none") {
        return { check: "counts", ok: true, skipped: true, detail: "the backup records no row counts (schema-only or adopted)" };
    }
    const pool = Array.isArray(clients) ? (clients as readonly Client[]) : [clients as Client];
    const trees = manifest.counts.method === "dump-stream" ? await partitionTrees(pool[0], manifest.tables) : new Map<string, string[]>();
    const checks = countChecks(manifest, trees);
    const found: (string | undefined)[] = checks.map(() => undefined);
    const queue = checks.map((_, i) => i).sort((a, b) => checks[b].expected - checks[a].expected);
    await Promise.all(pool.map(async (client) => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
            const c = checks[i];
            const r = await client.query<{ n: string }>(c.sql).catch((e: Error) => {
                found[i] = `${tableLabel(c.table)}: ${e.message}`;
                return undefined;
            });
            if (r && Number(r.rows[0].n) !== c.expected) {
                found[i] = `${tableLabel(c.table)}${c.tree ? " (its partition tree)" : ""}: ${r.rows[0].n} rows, manifest says ${c.expected}`;
            }
        }
    }));
    const wrong = found.filter((f): f is string => f !== undefined);
    return wrong.length > 0
        ? { check: "counts", ok: false, detail: `row counts differ from the backup's snapshot: ${wrong.join("; ")}` }
        : { check: "counts", ok: true, detail: `${manifest.tables.length} table(s) match the snapshot's counts` };
}

/** Sequences' values against the dump's setval() calls. */
export async function compareSequences(client: Client, expected: SequenceValue[] | undefined): Promise<CheckResult> {
    if (!expected) {
        return { check: "sequences", ok: true, skipped: true, detail: "not compared for plain-format backups" };
    }
    const wrong: string[] = [];
    for (const s of expected) {
        const r = await client.query<{ v: string | null }>("SELECT pg_sequence_last_value($1::regclass)::text AS v", [s.name]).catch((e: Error) => {
            wrong.push(`${s.name}: ${e.message}`);
            return undefined;
        });
        const want = s.called ? s.value : null;
        if (r && r.rows[0].v !== want) {
            wrong.push(`${s.name}: ${r.rows[0].v ?? "not called"}, the dump says ${want ?? "not called"}`);
        }
    }
    return wrong.length > 0
        ? { check: "sequences", ok: false, detail: `sequence values differ: ${wrong.join("; ")}` }
        : { check: "sequences", ok: true, detail: `${expected.length} sequence value(s) match` };
}

/** Large objects: the same OIDs as the dump's (or the manifest's count). */
export async function compareLargeObjects(client: Client, expected: string[] | undefined, manifest: Manifest): Promise<CheckResult> {
    const r = await client.query<{ oid: string }>("SELECT oid::text FROM pg_largeobject_metadata ORDER BY oid");
    const got = r.rows.map((x) => x.oid);
    if (expected) {
        // Sets: a database may hold millions of large objects (includes() made this quadratic).
        const want = new Set(expected);
        const have = new Set(got);
        const missing = expected.filter((o) => !have.has(o));
        const extra = got.filter((o) => !want.has(o));
        return missing.length + extra.length === 0
            ? { check: "large-objects", ok: true, detail: `${got.length} large object(s), the dump's OIDs` }
            : { check: "large-objects", ok: false, detail: `large objects differ: ${missing.length} missing, ${extra.length} unexpected (dump has ${expected.length})` };
    }
    const count = manifest.counts.largeObjects;
    if (count === undefined) {
        return { check: "large-objects", ok: true, skipped: true, detail: `${got.length} large object(s); the backup records no count to compare` };
    }
    return got.length === count
        ? { check: "large-objects", ok: true, detail: `${got.length} large object(s), as the manifest says` }
        : { check: "large-objects", ok: false, detail: `${got.length} large object(s), the manifest says ${count}` };
}

/**
 * Every comparison of a restored database with its backup, reported in order. The row counts
 * (full scans, on `jobs` connections) and the schema comparison (a pg_dump --schema-only) run at
 * the same time: they read different things, and a restore's check is on its critical path.
 */
export async function compareRestored(server: Settings, database: string, p: { tools: ClientTools; expected: Expected; located: { manifest: Manifest } }, connectTo: (db: string) => Promise<Client>, jobs = 2): Promise<CheckResult[]> {
    const clients: Client[] = [];
    try {
        // One connection per count scan to run at once, connected together; each one made is ended below, even when another failed.
        const tables = p.located.manifest.tables.length;
        const made = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(jobs, tables)) }, () => connectTo(database)));
        clients.push(...made.flatMap((m) => (m.status === "fulfilled" ? [m.value] : [])));
        const refused = made.find((m): m is PromiseRejectedResult => m.status === "rejected");
        if (refused) {
            throw refused.reason;
        }
        // Both settle before either failure is reported: the connections are ended below, and
        // neither a pg_dump nor a count scan may outlive this function (Promise.all would return
        // at the first failure, leaving the other running).
        const [counts, schema] = await settled([
            compareCounts(clients, p.located.manifest),
            compareSchema(p.tools, server, database, p.expected),
        ]);
        const c = clients[0];
        return [
            counts,
            ...schema,
            await compareSequences(c, p.expected.sequences),
            await compareLargeObjects(c, p.expected.largeObjects, p.located.manifest),
        ];
    } finally {
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
}
