/**
 * `kx-backup restore`: the runbook's §4 procedures as one command that builds before it destroys.
 * Everything that can refuse does so before anything is touched: the plan (plan.ts), the
 * backup's sha256, the `--tables` names, the roles the backup needs. A whole database is built
 * beside the original, checked against the backup, then swapped in (swap.ts); any failure leaves
 * the original untouched and says so, and names the backup a retry restores.
 */
import { Client } from "pg";
import { runBackup } from "../backup";
import { connect, userObjects } from "../db";
import { fetchVerified, Fetched, locate, Located } from "../fetch";
import { fetchGlobals } from "../globals";
import { formatDuration, JobError, Logger } from "../log";
import { checkDatabaseName, newRunId } from "../naming";
import { chooseTools, discoverTools } from "../pgtools";
import { Settings } from "../settings";
import { stopping, throwIfStopping } from "../shutdown";
import { Target } from "../targets";
import { buildDatabase, dropDatabase, dropOnStop } from "./build";
import { CheckResult, compareRestored } from "./compare";
import { planRestore, RestoreFlags, RestorePlan, TargetState } from "./plan";
import { prepare } from "./prepare";
import { createRoles, missingRoles, rolesToCreate } from "./roles";
import { rowChanges, swapIn } from "./swap";
import { checkTables, restoreTables, TablesResult } from "./tables";
import { resolveTables } from "./toc";

export interface RestoreOptions extends RestoreFlags {
    database: string;
    backup: string;
    planOnly: boolean;
    target: Target;
    /** Where safety dumps go: every configured target. */
    safetyTargets: Target[];
}

export interface RestoreResult {
    plan: RestorePlan;
    durationMs: number;
    checks: CheckResult[];
    tables?: TablesResult;
    safetyKey?: string;
}

/** Databases a restore never replaces: the templates, and the one it connects to. */
const RESERVED = ["template0", "template1", "postgres"];

async function targetState(admin: Client, s: Settings, name: string): Promise<TargetState> {
    const r = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (r.rowCount === 0) {
        return { exists: false, objects: {}, sessions: 0 };
    }
    const c = await connect(s, name);
    try {
        const objects = await userObjects(c);
        const sessions = await admin.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
        return { exists: true, objects, sessions: Math.max(0, (sessions.rowCount ?? 0) - 1) };
    } finally {
        await c.end().catch(() => undefined);
    }
}

/** Creates the roles the backup needs, or refuses naming them (exit 2). */
async function ensureRoles(admin: Client, o: RestoreOptions, located: Located, needed: string[], log: Logger): Promise<() => Promise<void>> {
    const missing = await missingRoles(admin, needed);
    if (missing.length === 0) {
        return async () => undefined;
    }
    if (!o.createRoles) {
        throw new JobError(
            `the server lacks role(s) ${missing.join(", ")} that the backup needs: add --create-roles to create them from the backup's globals ` +
                "(without passwords), or create them yourself",
            2,
        );
    }
    const globals = await fetchGlobals(located.target, located.manifest, log);
    const existing = new Set((await admin.query<{ n: string }>("SELECT rolname AS n FROM pg_roles")).rows.map((r) => r.n));
    const create = rolesToCreate(missing, globals, existing);
    return () => createRoles(admin, create, globals!, log);
}

export async function runRestore(s: Settings, o: RestoreOptions, log: Logger): Promise<RestoreResult | RestorePlan> {
    // Any name backup accepts can be restored into: `kong-db`, `my db`, unicode.
    const badInto = checkDatabaseName(o.into);
    if (badInto) {
        throw new JobError(`--into: ${badInto}`, 2);
    }
    if (RESERVED.includes(o.into)) {
        throw new JobError(`--into ${o.into}: a restore never replaces ${o.into}; restore into another database`, 2);
    }
    const located = await locate(o.target, o.database, o.backup, { signingKey: s.signingKey, log });
    const key = located.entry.key;
    const admin = await connect(s, "postgres");
    let fetched: Fetched | undefined;
    let plan: RestorePlan | undefined;
    let safetyKey: string | undefined;
    let built: { name: string; release: () => void } | undefined;
    let swapped = false;
    try {
        plan = planRestore(o, await targetState(admin, s, o.into), { key, from: o.target.kind, scope: located.manifest.scope, format: located.manifest.format }, newRunId());
        if (o.planOnly) {
            log.info(`restore plan (nothing done):\n  ${plan.steps.map((x, i) => `${i + 1}. ${x}`).join("\n  ")}`, { event: "restore.plan", plan });
            return plan;
        }
        // Nothing is touched before the backup is known to be intact and fit for this server.
        fetched = await fetchVerified(located, s.workDir);
        log.info(`restore ${key} → ${o.into}: sha256 matches`, { event: "restore.checksum", key });
        const server = await admin.query<{ n: string; v: string }>("SELECT current_setting('server_version_num') AS n, current_setting('server_version') AS v");
        const tools = chooseTools(discoverTools(s.pgBinDir), Math.floor(Number(server.rows[0].n) / 10000), server.rows[0].v);
        const prepared = await prepare(located, fetched, tools);
        const tables = o.tables.length > 0 ? resolveTables(prepared.toc, o.tables) : [];
        if (tables.length > 0) {
            await checkTables(s, o.into, prepared, tables, o.dataOnly);
        }
        const makeRoles = await ensureRoles(admin, o, located, prepared.roles, log);

        // Counted before the safety dump: any change after it exists only in the original.
        const changesBefore = plan.old ? await rowChanges(admin, o.into) : undefined;
        if (plan.nonEmpty && o.safetyDump) {
            const safety = await runBackup({ ...s, pgDatabase: o.into, format: "custom", jobs: 1 }, { schemaOnly: false, dataOnly: false, tables: [], safety: true }, o.safetyTargets, log);
            safetyKey = safety.key;
            log.info(`safety dump of ${o.into}: ${safety.key}`, { event: "restore.safety-dump", key: safety.key });
        }
        await makeRoles();
        const started = Date.now();
        if (tables.length > 0) {
            const result = await restoreTables(s, o.into, prepared, tables, o.dataOnly, log);
            return { plan, durationMs: Date.now() - started, checks: [], tables: result, safetyKey };
        }

        built = { name: plan.scratch!, release: dropOnStop(s, plan.scratch!) };
        const durationMs = await buildDatabase(admin, s, prepared, built.name, s.restoreJobs, log);
        const checks = await compareRestored(s, built.name, prepared, (db) => connect(s, db), s.restoreJobs);
        const wrong = checks.filter((c) => !c.ok);
        if (wrong.length > 0) {
            throw new JobError(`the restored database does not match the backup: ${wrong.map((c) => `${c.check}: ${c.detail}`).join("; ")}`);
        }
        log.info(`restored ${key} into ${built.name} in ${formatDuration(durationMs)}; ${checks.filter((c) => !c.skipped).map((c) => c.check).join(", ")} match the backup`, { event: "restore.checked", checks });
        // A stop (SIGTERM, Ctrl-C) asked for while the database was built must never be answered
        // by replacing the original: the swap starts only if nobody asked to stop.
        throwIfStopping();
        await swapIn(admin, { scratch: built.name, into: o.into, old: plan.old, terminate: o.terminateConnections }, log);
        swapped = true;
        built.release();
        if (plan.old && stopping()) {
            log.warn(`stopped right after the swap: ${o.into} is the restored database; the original is kept as ${plan.old} (drop it when you no longer need it)`, { event: "restore.keep-original", old: plan.old });
        } else if (plan.old && !o.keepOriginal) {
            if (await droppable(admin, plan.old, changesBefore, log)) {
                await dropDatabase(admin, plan.old).then(
                    () => log.info(`dropped the original (${plan!.old})`, { event: "restore.drop-original" }),
                    (e: Error) => log.warn(`the restore is done, but the original could not be dropped: ${e.message}; drop ${plan!.old} by hand`, { event: "restore.drop-original" }),
                );
            }
        } else if (plan.old) {
            log.info(`the original is kept as ${plan.old} (--keep-original); drop it when you no longer need it`, { event: "restore.keep-original", old: plan.old });
        }
        const counts = checks.find((c) => c.check === "counts");
        log.info(`restore ${key} → ${o.into} ok in ${formatDuration(durationMs)}: ${counts?.detail ?? "restored"}`, { event: "restore.done", into: o.into, durationMs });
        return { plan, durationMs, checks, safetyKey };
    } catch (e) {
        if (built && !swapped) {
            await dropDatabase(admin, built.name).catch(() => undefined);
            built.release();
        }
        const err = e instanceof JobError ? e : new JobError(`restore of ${key} into ${o.into} failed: ${(e as Error).message}`);
        throw new JobError(`${err.message}. ${retryNote(o, key, err.exitCode === 2 ? undefined : plan, safetyKey)}`, err.exitCode);
    } finally {
        fetched?.cleanup();
        await admin.end().catch(() => undefined);
    }
}

/**
 * Whether the replaced original may be dropped: only when no row in it changed since the restore
 * began (before its safety dump). Writers that --terminate-connections ended at the swap, or that
 * nobody stopped, wrote what neither the backup nor the safety dump holds: then it is kept.
 */
async function droppable(admin: Client, old: string, before: number | undefined, log: Logger): Promise<boolean> {
    const after = await rowChanges(admin, old).catch(() => undefined);
    if (before !== undefined && after === before) {
        return true;
    }
    const why = before === undefined || after === undefined
        ? "PostgreSQL counts no row changes here (track_counts is off), so nothing proves it unchanged"
        : `${after - before} row change(s) were made in it while the restore ran (after the safety dump, if one was taken)`;
    log.warn(`the original is kept as ${old}: ${why}; compare it with the restored database, then drop it yourself`, { event: "restore.keep-original", old, reason: "changed" });
    return false;
}

/** What a failed or refused restore (no plan: refused before anything ran) left, and the exact backup a retry restores. Pure. */
export function retryNote(o: Pick<RestoreOptions, "into" | "database">, key: string, plan: RestorePlan | undefined, safetyKey: string | undefined): string {
    const untouched = plan?.mode === "tables"
        ? `${o.into} is as it was (the tables' transaction was rolled back)`
        : `${o.into} was not changed`;
    const retry = `to retry with the same backup: --backup ${key.slice(o.database.length + 1)}`;
    const safety = safetyKey ? `; the safety dump taken first is ${safetyKey} (--database ${o.into} --backup ${safetyKey.slice(o.into.length + 1)})` : "";
    return `${untouched}; ${retry}${safety}`;
}
