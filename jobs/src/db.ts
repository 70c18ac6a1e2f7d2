/**
 * The PostgreSQL side of a backup, through node-postgres: connection with errors an operator can
 * act on, server version, and a held snapshot whose per-table row counts match the dump exactly.
 */
import { Client, ClientConfig } from "pg";
import { Settings } from "./settings";
import { JobError } from "./log";

export function clientConfig(s: Settings, database?: string): ClientConfig {
    const ssl = ["require", "verify-ca", "verify-full"].includes(s.pgSslMode)
        ? { rejectUnauthorized: s.pgSslMode !== "require" }
        : false;
    return {
        host: s.pgHost,
        port: s.pgPort,
        user: s.pgUser,
        password: s.pgPassword,
        database: database ?? s.pgDatabase,
        ssl,
        connectionTimeoutMillis: 15_000,
        application_name: "kx-backup",
    };
}

/** Turns a driver error into one line saying what failed and what to do. Never includes a password. */
export function describeConnectError(e: unknown, s: Settings, database: string | undefined): string {
    const err = e as { code?: string; message?: string };
    const where = `PostgreSQL at ${s.pgHost}:${s.pgPort}`;
    const who = s.pgUser ? ` as ${s.pgUser}` : "";
    switch (err.code) {
        case "ECONNREFUSED":
            return `cannot connect to ${where} (connection refused): is the server up, and are PGHOST/PGPORT right?`;
        case "ENOTFOUND":
        case "EAI_AGAIN":
            return `cannot resolve ${s.pgHost}: check PGHOST`;
        case "ETIMEDOUT":
            return `connecting to ${where} timed out: check the network path (NetworkPolicy, firewall)`;
        case "28P01":
            return `password authentication failed for ${where}${who}: check PGPASSWORD (the database's Secret)`;
        case "28000":
            return `${where} refused the connection${who}: check pg_hba.conf and PGUSER`;
        case "3D000":
            return `database "${database}" does not exist on ${where}: check PGDATABASE`;
        default:
            return `cannot connect to ${where}${who}: ${err.message ?? String(e)}`;
    }
}

export async function connect(s: Settings, database?: string): Promise<Client> {
    const client = new Client(clientConfig(s, database));
    // A server that goes away mid-backup surfaces through the queries and pg_dump; this only keeps
    // the process from crashing on the socket error event.
    client.on("error", () => undefined);
    try {
        await client.connect();
    } catch (e) {
        await client.end().catch(() => undefined);
        throw new JobError(describeConnectError(e, s, database ?? s.pgDatabase));
    }
    return client;
}

export interface ServerInfo {
    version: string;
    versionNum: number;
    major: number;
}

export async function serverInfo(client: Client): Promise<ServerInfo> {
    const r = await client.query<{ v: string; n: string }>("SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n");
    const versionNum = Number(r.rows[0].n);
    return { version: r.rows[0].v.split(" ")[0], versionNum, major: Math.floor(versionNum / 10000) };
}

export async function databaseSize(client: Client): Promise<number> {
    const r = await client.query<{ size: string }>("SELECT pg_database_size(current_database())::text AS size");
    return Number(r.rows[0].size);
}

/** Opens a repeatable-read transaction and exports its snapshot for pg_dump --snapshot. */
export async function exportSnapshot(client: Client): Promise<string> {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const r = await client.query<{ id: string }>("SELECT pg_export_snapshot() AS id");
    return r.rows[0].id;
}

export interface TableRef {
    schema: string;
    name: string;
}

export function qualified(t: TableRef): string {
    return `${t.schema}.${t.name}`;
}

/** pg_dump -t patterns: `*` and `?` wildcards, optional schema part. */
export function tablePatternMatcher(patterns: readonly string[]): (t: TableRef) => boolean {
    if (patterns.length === 0) {
        return () => true;
    }
    const toRegex = (p: string) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    const compiled = patterns.map((p) => {
        const dot = p.indexOf(".");
        return dot >= 0 ? { schema: toRegex(p.slice(0, dot)), name: toRegex(p.slice(dot + 1)) } : { schema: undefined, name: toRegex(p) };
    });
    return (t) => compiled.some((c) => (c.schema ? c.schema.test(t.schema) : true) && c.name.test(t.name));
}

/** User tables whose data pg_dump writes (leaf tables, not extension members, not system schemas). */
export async function userTables(client: Client): Promise<TableRef[]> {
    const r = await client.query<TableRef>(`
        SELECT n.nspname AS schema, c.relname AS name
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1, 2`);
    return r.rows;
}

/** A quoted SQL identifier. */
export function quoteIdent(s: string): string {
    return `"${s.replace(/"/g, '""')}"`;
}

/** A table as SQL: "schema"."name". */
export function sqlTable(t: TableRef): string {
    return `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}

/** Reads back the `schema.name` keys that manifests record (see qualified()). */
export function parseQualified(name: string): TableRef {
    const dot = name.indexOf(".");
    return { schema: name.slice(0, dot), name: name.slice(dot + 1) };
}

/** The libpq environment for child processes (pg_dump, pg_restore, psql): the settings, nothing on the command line. */
export function libpqEnv(s: Settings): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, PGHOST: s.pgHost, PGPORT: String(s.pgPort), PGSSLMODE: s.pgSslMode };
    for (const [k, v] of [["PGUSER", s.pgUser], ["PGPASSWORD", s.pgPassword], ["PGDATABASE", s.pgDatabase], ["PGPASSFILE", s.pgPassFile]] as const) {
        if (v !== undefined) {
            env[k] = v;
        } else {
            delete env[k];
        }
    }
    return env;
}

/** Exact row counts, read inside the caller's transaction (so: from its snapshot). */
export async function countRows(client: Client, tables: readonly TableRef[]): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const t of tables) {
        const r = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${sqlTable(t)}`);
        counts[qualified(t)] = Number(r.rows[0].n);
    }
    return counts;
}
