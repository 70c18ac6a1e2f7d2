/**
 * `kx-backup restore`: the runbook's §4 procedures as one command. Checks the backup's sha256
 * before touching anything; refuses to overwrite a non-empty database without --force, and then
 * first takes a safety dump of it; ends by comparing row counts with the backup's snapshot.
 */
import { execFile } from "child_process";
import * as path from "path";
import { Client } from "pg";
import { promisify } from "util";
import { runBackup } from "./backup";
import { connect, countRows, libpqEnv, qualified, quoteIdent, sqlTable, tablePatternMatcher, userTables } from "./db";
import { fetchVerified, Fetched, locate } from "./fetch";
import { failureLine, formatDuration, JobError, Logger } from "./log";
import { chooseTools, discoverTools } from "./pgtools";
import { Settings } from "./settings";
import { Target } from "./targets";

const execFileP = promisify(execFile);

export interface RestoreOptions {
    database: string;
    backup: string;
    into: string;
    tables: string[];
    dataOnly: boolean;
    clean: boolean;
    force: boolean;
    safetyDump: boolean;
    terminateConnections: boolean;
    planOnly: boolean;
    target: Target;
    /** Where safety dumps go: every configured target. */
    safetyTargets: Target[];
}

export interface RestorePlan {
    backup: string;
    from: string;
    into: string;
    intoExists: boolean;
    intoTables: number;
    intoRows: number;
    steps: string[];
}

/** What a restore will do, decided from the state of the target database. Pure. */
export function planRestore(o: Pick<RestoreOptions, "into" | "tables" | "dataOnly" | "clean" | "force" | "safetyDump" | "terminateConnections">, state: { exists: boolean; tables: number; rows: number }, backup: string, from: string): RestorePlan {
    const nonEmpty = state.exists && state.tables > 0;
    const partial = o.tables.length > 0;
    if (o.dataOnly && !partial) {
        throw new JobError("--data-only restores selected tables: add --tables (the runbook's §4.3)", 2);
    }
    if (o.clean && o.dataOnly) {
        throw new JobError("--clean and --data-only exclude each other: a data-only restore truncates the selected tables instead", 2);
    }
    if (nonEmpty && !o.force) {
        throw new JobError(
            `database ${o.into} exists and holds ${state.tables} table(s) with ${state.rows} row(s): add --force to overwrite it ` +
                "(a safety dump is taken first), or restore --into a new database",
            2,
        );
    }
    const steps: string[] = [`check the sha256 of ${backup} on ${from}`];
    if (nonEmpty && o.safetyDump) {
        steps.push(`take a safety dump of ${o.into} to every target`);
    }
    if (state.exists && o.terminateConnections) {
        steps.push(`terminate other sessions on ${o.into}`);
    }
    if (partial) {
        if (!state.exists) {
            steps.push(`create database ${o.into}`);
        }
        if (o.dataOnly && nonEmpty) {
            steps.push(`empty ${o.tables.join(", ")} in ${o.into} (triggers off)`);
        }
        steps.push(`pg_restore ${o.dataOnly ? "--data-only --disable-triggers " : ""}--table ${o.tables.join(" --table ")} into ${o.into}`);
    } else if (state.exists && o.clean) {
        steps.push(`pg_restore --clean --if-exists into ${o.into}`);
    } else {
        if (state.exists) {
            steps.push(`drop database ${o.into}`);
        }
        steps.push(`create database ${o.into}`, `pg_restore into ${o.into}`);
    }
    steps.push("compare row counts of the restored tables with the backup's snapshot");
    return { backup, from, into: o.into, intoExists: state.exists, intoTables: state.tables, intoRows: state.rows, steps };
}

async function databaseState(admin: Client, s: Settings, name: string): Promise<{ exists: boolean; tables: number; rows: number }> {
    const r = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (r.rowCount === 0) {
        return { exists: false, tables: 0, rows: 0 };
    }
    const c = await connect(s, name);
    try {
        const tables = await userTables(c);
        const counts = await countRows(c, tables);
        return { exists: true, tables: tables.length, rows: Object.values(counts).reduce((a, b) => a + b, 0) };
    } finally {
        await c.end().catch(() => undefined);
    }
}

export interface RestoreResult {
    plan: RestorePlan;
    durationMs: number;
    counts: Record<string, { restored: number; expected: number }>;
}

export async function runRestore(s: Settings, o: RestoreOptions, log: Logger): Promise<RestoreResult | RestorePlan> {
    if (!/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(o.into)) {
        throw new JobError(`--into ${o.into}: not a database name`, 2);
    }
    const located = await locate(o.target, o.database, o.backup, { signingKey: s.signingKey, log });
    const admin = await connect(s, "postgres");
    let fetched: Fetched | undefined;
    try {
        const state = await databaseState(admin, s, o.into);
        const plan = planRestore(o, state, located.entry.key, o.target.kind);
        if (o.planOnly) {
            log.info(`restore plan (nothing done):\n  ${plan.steps.map((x, i) => `${i + 1}. ${x}`).join("\n  ")}`, { event: "restore.plan", plan });
            return plan;
        }
        // Nothing is touched before the backup is known to be intact.
        fetched = await fetchVerified(located, s.workDir);
        log.info(`restore ${located.entry.key} → ${o.into}: sha256 matches`, { event: "restore.checksum", key: located.entry.key });
        const server = await admin.query<{ n: string }>("SELECT current_setting('server_version_num') AS n");
        const major = Math.floor(Number(server.rows[0].n) / 10000);
        const tools = chooseTools(discoverTools(s.pgBinDir), major, String(major));

        const nonEmpty = state.exists && state.tables > 0;
        if (nonEmpty && o.safetyDump) {
            const safety = await runBackup({ ...s, pgDatabase: o.into, format: "custom", jobs: 1 }, { schemaOnly: false, dataOnly: false, tables: [], safety: true }, o.safetyTargets, log);
            log.info(`safety dump of ${o.into}: ${safety.key}`, { event: "restore.safety-dump", key: safety.key });
        }
        if (state.exists && o.terminateConnections) {
            const r = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [o.into]);
            log.info(`terminated ${r.rowCount} session(s) on ${o.into}`, { event: "restore.terminate", sessions: r.rowCount });
        }
        const partial = o.tables.length > 0;
        const recreate = !partial && state.exists && !o.clean;
        if (recreate) {
            await admin.query(`DROP DATABASE ${quoteIdent(o.into)}${o.terminateConnections ? " WITH (FORCE)" : ""}`).catch((e) => {
                throw new JobError(`cannot drop ${o.into}: ${(e as Error).message} (other sessions? stop writers or add --terminate-connections)`);
            });
        }
        if (!state.exists || recreate) {
            await admin.query(`CREATE DATABASE ${quoteIdent(o.into)}`);
        }
        if (partial && o.dataOnly && nonEmpty) {
            const c = await connect(s, o.into);
            try {
                const match = tablePatternMatcher(o.tables);
                const tables = (await userTables(c)).filter(match);
                // Emptied with triggers (foreign keys included) off, as the restore itself runs
                // with --disable-triggers: rows elsewhere that point at these are kept and match
                // again once the data is back. Needs a superuser, like --disable-triggers.
                await c.query("BEGIN");
                await c.query("SET LOCAL session_replication_role = replica");
                for (const t of tables) {
                    await c.query(`DELETE FROM ${sqlTable(t)}`);
                }
                await c.query("COMMIT");
            } finally {
                await c.end().catch(() => undefined);
            }
        }
        const args = ["--no-password", "--exit-on-error", "--dbname", o.into];
        if (partial) {
            for (const t of o.tables) {
                args.push("--table", t.includes(".") ? t.slice(t.indexOf(".") + 1) : t);
            }
            if (o.dataOnly) {
                args.push("--data-only", "--disable-triggers");
            }
        } else if (state.exists && o.clean) {
            args.push("--clean", "--if-exists");
        }
        if (located.manifest.format !== "plain") {
            args.push("--jobs", String(partial ? 1 : s.restoreJobs));
        }
        const started = Date.now();
        const env = libpqEnv({ ...s, pgDatabase: o.into });
        if (located.manifest.format === "plain") {
            if (partial) {
                throw new JobError("selected tables cannot be restored from a plain SQL dump", 2);
            }
            await execFileP(path.join(tools.dir, "psql"), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", o.into, "-f", fetched.input], { env, maxBuffer: 64 * 1024 * 1024 });
        } else {
            await execFileP(path.join(tools.dir, "pg_restore"), [...args, fetched.input], { env, maxBuffer: 64 * 1024 * 1024 }).catch((e) => {
                throw new JobError(`pg_restore into ${o.into} failed: ${failureLine(String(e.stderr ?? e.message))}`);
            });
        }
        const durationMs = Date.now() - started;

        // Counts of the restored tables against the backup's snapshot.
        const c = await connect(s, o.into);
        const counts: RestoreResult["counts"] = {};
        try {
            const match = tablePatternMatcher(o.tables);
            const expected = new Map(located.manifest.tables.map((t) => [qualified(t), t.rows]));
            const restored = (await userTables(c)).filter(match).filter((t) => expected.has(qualified(t)));
            const actual = await countRows(c, restored);
            for (const [table, n] of Object.entries(actual)) {
                counts[table] = { restored: n, expected: expected.get(table)! };
            }
        } finally {
            await c.end().catch(() => undefined);
        }
        const wrong = Object.entries(counts).filter(([, v]) => v.restored !== v.expected);
        if (wrong.length > 0) {
            throw new JobError(`restored ${o.into}, but row counts differ from the backup: ${wrong.map(([t, v]) => `${t} ${v.restored} ≠ ${v.expected}`).join("; ")}`);
        }
        log.info(`restore ${located.entry.key} → ${o.into} ok in ${formatDuration(durationMs)}: ${Object.keys(counts).length} table(s) match the backup's counts`, { event: "restore.done", into: o.into, durationMs });
        return { plan, durationMs, counts };
    } finally {
        fetched?.cleanup();
        await admin.end().catch(() => undefined);
    }
}
