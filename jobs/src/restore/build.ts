/**
 * The one way a whole database is restored, for restore and verify alike: create it with the
 * backup's properties (CREATE DATABASE with the dump's encoding and locale, its owner), restore
 * the content with pg_restore keeping owners and privileges (or, for plain SQL, run it through
 * script.ts, never psql), then apply the database's settings, role settings, comment and ACL.
 * The database built is registered for removal on a stop until the caller keeps it.
 */
import { createReadStream } from "fs";
import { Client } from "pg";
import { connect, ConnectionVars, dbnameArg, PG_VARS, quoteIdent } from "../db";
import { JobError, Logger } from "../log";
import { Settings } from "../settings";
import { onStop } from "../shutdown";
import { Prepared } from "./prepare";
import { runScript } from "./script";
import { startTool } from "./tools";

/** pg_restore's arguments for a whole-database restore into `database`. Pure. */
export function pgRestoreArgs(database: string, jobs: number, input: string): string[] {
    return ["--no-password", "--exit-on-error", "--jobs", String(jobs), "--dbname", dbnameArg(database), input];
}

/**
 * Drops a database the restore made, or the original it replaced (sessions ended first). A backup
 * of a template database makes its copy a template too (the dump's `IS_TEMPLATE = true`), which
 * DROP refuses: unmarked first, and marked again if the DROP fails anyway (a subscription, a
 * session FORCE cannot end), so a database that stays is left as it was.
 */
export async function dropDatabase(admin: Client, name: string): Promise<void> {
    const template = (await admin.query<{ t: boolean }>("SELECT datistemplate AS t FROM pg_database WHERE datname = $1", [name])).rows[0]?.t === true;
    if (template) {
        await admin.query(`ALTER DATABASE ${quoteIdent(name)} WITH IS_TEMPLATE false`);
    }
    try {
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    } catch (e) {
        if (template) {
            await admin.query(`ALTER DATABASE ${quoteIdent(name)} WITH IS_TEMPLATE true`).catch(() => undefined);
        }
        throw e;
    }
}

/**
 * Registers a database for removal if the job is stopped (SIGTERM) before it is kept or
 * dropped; returns the release function. Connects anew: the caller's connection may be busy.
 */
export function dropOnStop(server: Settings, name: string, vars: ConnectionVars = PG_VARS): () => void {
    return onStop(`drop database ${name}`, async () => {
        const c = await connect(server, "postgres", vars);
        try {
            await dropDatabase(c, name);
        } finally {
            await c.end().catch(() => undefined);
        }
    });
}

async function run(admin: Client, sql: string, what: string): Promise<void> {
    await admin.query(sql).catch((e: Error) => {
        throw new JobError(`${what}: ${e.message}`);
    });
}

/**
 * Builds `name` on `server` from the backup; returns how long the restore took (ms), on the
 * monotonic clock verify times the whole restore with: a clock step never makes the part longer
 * than the whole (which status would rightly call unusable).
 */
export async function buildDatabase(admin: Client, server: Settings, p: Prepared, name: string, jobs: number, log: Logger, vars: ConnectionVars = PG_VARS): Promise<number> {
    const key = p.located.entry.key;
    const started = performance.now();
    if (p.plain || !p.database) {
        await run(admin, `CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`, `cannot create ${name}`);
        const c = await connect(server, name, vars);
        try {
            const stats = await runScript(c, createReadStream(p.fetched.input), { label: `plain backup ${key}` });
            log.info(`ran ${stats.statements} statement(s) of ${key}, ${stats.rows} row(s) copied`, { event: "restore.script", key, ...stats });
        } finally {
            await c.end().catch(() => undefined);
        }
        return Math.round(performance.now() - started);
    }
    for (const sql of p.database.create(name)) {
        await run(admin, sql, `cannot create ${name} with the backup's properties`);
    }
    const restore = startTool(p.tools, "pg_restore", pgRestoreArgs(name, jobs, p.fetched.input), { ...server, pgDatabase: name }, `pg_restore of ${key} into ${name}`);
    await restore.exited;
    for (const sql of p.database.properties(name)) {
        await run(admin, sql, `cannot apply the backup's database properties to ${name}`);
    }
    return Math.round(performance.now() - started);
}
