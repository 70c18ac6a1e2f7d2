/**
 * The PostgreSQL side of a backup, through node-postgres: connection with errors an operator can
 * act on, server version, and a held snapshot whose per-table row counts match the dump exactly.
 */
import { Client, ClientConfig } from "pg";
import { Settings } from "./settings";
import { JobError } from "./log";
import { tableLabel } from "./manifest";
import { parseTableName } from "./restore/toc";

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
        // Text goes both ways as UTF-8 whatever the database's encoding.
        client_encoding: "UTF8",
    };
}

/** The variables an operator sets for a server: production (PG*) or the verify server (VERIFY_PG*). */
export interface ConnectionVars {
    host: string;
    port: string;
    user: string;
    password: string;
    database: string;
}

export const PG_VARS: ConnectionVars = { host: "PGHOST", port: "PGPORT", user: "PGUSER", password: "PGPASSWORD", database: "PGDATABASE" };
export const VERIFY_VARS: ConnectionVars = { host: "VERIFY_PGHOST", port: "VERIFY_PGPORT", user: "VERIFY_PGUSER", password: "VERIFY_PGPASSWORD", database: "the scratch database" };

/** Turns a driver error into one line saying what failed and what to do. Never includes a password. */
export function describeConnectError(e: unknown, s: Settings, database: string | undefined, vars: ConnectionVars = PG_VARS): string {
    const err = e as { code?: string; message?: string };
    const where = `PostgreSQL at ${s.pgHost}:${s.pgPort}`;
    const who = s.pgUser ? ` as ${s.pgUser}` : "";
    switch (err.code) {
        case "ECONNREFUSED":
            return `cannot connect to ${where} (connection refused): is the server up, and are ${vars.host}/${vars.port} right?`;
        case "ENOTFOUND":
        case "EAI_AGAIN":
            return `cannot resolve ${s.pgHost}: check ${vars.host}`;
        case "ETIMEDOUT":
            return `connecting to ${where} timed out: check the network path (NetworkPolicy, firewall)`;
        case "28P01":
            return `password authentication failed for ${where}${who}: check ${vars.password}${vars === PG_VARS ? " (the database's Secret)" : ""}`;
        case "28000":
            return `${where} refused the connection${who}: check pg_hba.conf and ${vars.user}`;
        case "3D000":
            return `database "${database}" does not exist on ${where}: check ${vars.database}`;
        default:
            return `cannot connect to ${where}${who}: ${err.message ?? String(e)}`;
    }
}

export async function connect(s: Settings, database?: string, vars: ConnectionVars = PG_VARS): Promise<Client> {
    const client = new Client(clientConfig(s, database));
    // A server that goes away mid-backup surfaces through the queries and pg_dump; this only keeps
    // the process from crashing on the socket error event.
    client.on("error", () => undefined);
    try {
        await client.connect();
    } catch (e) {
        await client.end().catch(() => undefined);
        throw new JobError(describeConnectError(e, s, database ?? s.pgDatabase, vars));
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

/** A table as one unambiguous key: each part quoted where a plain `schema.name` could be misread (tableLabel). */
export function qualified(t: TableRef): string {
    return tableLabel(t);
}

/**
 * pg_dump -t patterns, read as pg_dump reads them: unquoted parts fold to lower case, "quoted"
 * parts are exact (dots and capitals included), `*` and `?` are wildcards, an optional schema
 * part. (Read otherwise, `--table Orders` or `--table '"We.ird".t'` dumps a table whose rows are
 * never counted.) A pattern this cannot read matches nothing here; pg_dump stays the judge.
 */
export function tablePatternMatcher(patterns: readonly string[]): (t: TableRef) => boolean {
    if (patterns.length === 0) {
        return () => true;
    }
    const compiled = patterns.flatMap((p) => {
        try {
            return [parseTableName(p)];
        } catch {
            return [];
        }
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

/** Reads back a qualified() key; an unquoted key (manifest v1) splits at its first dot. */
export function parseQualified(key: string): TableRef {
    const parts: string[] = [];
    let i = 0;
    while (i <= key.length && parts.length < 2) {
        if (key[i] === '"') {
            let part = "";
            i++;
            while (i < key.length && !(key[i] === '"' && key[i + 1] !== '"')) {
                part += key[i];
                i += key[i] === '"' ? 2 : 1;
            }
            parts.push(part);
            i += 2; // the closing quote and the dot
        } else {
            const dot = parts.length === 0 ? key.indexOf(".", i) : -1;
            parts.push(key.slice(i, dot < 0 ? undefined : dot));
            i = dot < 0 ? key.length + 1 : dot + 1;
        }
    }
    return { schema: parts[0] ?? "", name: parts[1] ?? "" };
}

/**
 * A database name as a libpq `--dbname` argument. libpq reads a dbname holding "=" or starting
 * with a URI prefix as a connection string (`x host=elsewhere` would send the password to
 * another server): such a name is given as `dbname='…'`, which libpq takes literally. Pure.
 */
export function dbnameArg(name: string): string {
    if (!name.includes("=") && !/^postgres(ql)?:\/\//.test(name)) {
        return name;
    }
    return `dbname='${name.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** What a child process may see besides its connection: where programs are, and the locale. */
const INHERITED = ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ"];

/**
 * The environment of a child process (pg_dump, pg_restore, pg_dumpall, psql): built from nothing
 * but PATH, the locale and the libpq settings of the one server it talks to (none: no server). Never the job's own
 * environment, which holds cloud credentials, BACKUP_* secrets and, for verify, the production
 * password: a child (or a backup it reads) can leak only what it was given.
 */
export function libpqEnv(s?: Settings): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const k of INHERITED) {
        if (process.env[k] !== undefined) {
            env[k] = process.env[k];
        }
    }
    if (!s) {
        return env;
    }
    Object.assign(env, { PGHOST: s.pgHost, PGPORT: String(s.pgPort), PGSSLMODE: s.pgSslMode, PGAPPNAME: "kx-backup" });
    for (const [k, v] of [["PGUSER", s.pgUser], ["PGPASSWORD", s.pgPassword], ["PGDATABASE", s.pgDatabase], ["PGPASSFILE", s.pgPassFile]] as const) {
        if (v !== undefined) {
            env[k] = v;
        }
    }
    return env;
}

/**
 * The query for a table's row count as a backup recorded it. `dump-stream` counts are the rows
 * pg_dump's `COPY t TO stdout` wrote: the table's own rows, never an inheritance child's (so
 * `FROM ONLY`); `snapshot-query` counts (manifests written before) were `count(*)`, children
 * included. Pure.
 */
export function rowCountSql(t: TableRef, method: "dump-stream" | "snapshot-query" | "none"): string {
    return `SELECT count(*)::text AS n FROM ${method === "dump-stream" ? "ONLY " : ""}${sqlTable(t)}`;
}

/** What a database holds besides what every new database has, by kind. Empty object: nothing. */
export type UserObjects = Partial<Record<"relations" | "large objects" | "functions" | "types" | "schemas" | "extensions" | "other objects", number>>;

/**
 * Counts user objects of every kind, so that "empty" means empty: a database holding only a large
 * object, a materialized view, a sequence, a function or a schema is not. Objects that belong to
 * an extension count once, as the extension (plpgsql, in every database, does not count).
 */
export async function userObjects(client: Client): Promise<UserObjects> {
    const r = await client.query<{ kind: keyof UserObjects; n: string }>(`
        WITH sys AS (
            SELECT oid FROM pg_namespace
            WHERE nspname IN ('pg_catalog', 'information_schema') OR nspname LIKE 'pg\\_toast%' OR nspname LIKE 'pg\\_temp\\_%'
        ), ext AS (
            SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
        )
        SELECT 'relations' AS kind, count(*)::text AS n FROM pg_class c
            WHERE c.relnamespace NOT IN (SELECT oid FROM sys) AND c.relkind NOT IN ('i', 'I', 't')
              AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_class'::regclass AND objid = c.oid)
        UNION ALL SELECT 'large objects', count(*)::text FROM pg_largeobject_metadata
        UNION ALL SELECT 'functions', count(*)::text FROM pg_proc p
            WHERE p.pronamespace NOT IN (SELECT oid FROM sys)
              AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_proc'::regclass AND objid = p.oid)
        UNION ALL SELECT 'types', count(*)::text FROM pg_type t
            WHERE t.typnamespace NOT IN (SELECT oid FROM sys) AND t.typrelid = 0
              AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_type'::regclass AND objid = t.oid)
              AND NOT EXISTS (SELECT 1 FROM pg_type a WHERE a.typarray = t.oid)
              AND NOT EXISTS (SELECT 1 FROM pg_range g WHERE g.rngmultitypid = t.oid)
        UNION ALL SELECT 'schemas', count(*)::text FROM pg_namespace n
            WHERE n.oid NOT IN (SELECT oid FROM sys) AND n.nspname <> 'public'
              AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_namespace'::regclass AND objid = n.oid)
        UNION ALL SELECT 'extensions', count(*)::text FROM pg_extension WHERE extname <> 'plpgsql'
        UNION ALL SELECT 'other objects', (
            (SELECT count(*) FROM pg_operator o WHERE o.oprnamespace NOT IN (SELECT oid FROM sys)
                AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_operator'::regclass AND objid = o.oid))
          + (SELECT count(*) FROM pg_collation l WHERE l.collnamespace NOT IN (SELECT oid FROM sys))
          + (SELECT count(*) FROM pg_ts_config f WHERE f.cfgnamespace NOT IN (SELECT oid FROM sys))
          + (SELECT count(*) FROM pg_foreign_server) + (SELECT count(*) FROM pg_event_trigger)
          + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_conversion v WHERE v.connamespace NOT IN (SELECT oid FROM sys))
        )::text`);
    const out: UserObjects = {};
    for (const row of r.rows) {
        if (Number(row.n) > 0) {
            out[row.kind] = Number(row.n);
        }
    }
    return out;
}

/** "3 relations, 1 large object": for messages. Pure. */
export function describeObjects(o: UserObjects): string {
    const parts = Object.entries(o).map(([kind, n]) => `${n} ${n === 1 ? kind.replace(/s$/, "") : kind}`);
    return parts.length === 0 ? "nothing" : parts.join(", ");
}
