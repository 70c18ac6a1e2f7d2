/**
 * What a restore will do, decided from the options, the backup and the state of the target
 * database. Pure: every refusal that needs no download happens here, with exit 2.
 *
 * A whole-database restore never works on the database it replaces: it builds a new one beside
 * it (`kx_new_<run>_<name>`), checks it, and swaps the two by renaming them in one transaction;
 * the original is dropped only after that, or kept under `kx_old_<run>_<name>` with
 * --keep-original. `--clean` means the same (it is kept for the runbook's `pg_restore -c`).
 */
import { describeObjects, UserObjects } from "../db";
import { JobError } from "../log";
import { BackupScope } from "../manifest";

export interface RestoreFlags {
    into: string;
    tables: string[];
    dataOnly: boolean;
    clean: boolean;
    force: boolean;
    safetyDump: boolean;
    terminateConnections: boolean;
    createRoles: boolean;
    keepOriginal: boolean;
    /** Restore a partial (schema-only, data-only, tables) backup as the whole database. */
    allowPartial: boolean;
}

export interface TargetState {
    exists: boolean;
    objects: UserObjects;
    /** Other sessions connected to it. */
    sessions: number;
}

export interface BackupFacts {
    key: string;
    from: string;
    scope: BackupScope;
    format: string;
}

export interface RestorePlan {
    backup: string;
    from: string;
    into: string;
    mode: "database" | "tables";
    /** The target holds user objects: replacing it needed --force and takes a safety dump. */
    nonEmpty: boolean;
    /** Whole-database restores: the database built and checked before the swap. */
    scratch?: string;
    /** Whole-database restores over an existing database: what the original becomes at the swap. */
    old?: string;
    steps: string[];
}

/** A database name for the restore's own use: lowercase, so pg_dump writes it unquoted. Pure. */
export function workName(role: "new" | "old", runId: string, into: string): string {
    return `kx_${role}_${runId}_${into.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`.slice(0, 63);
}

export function planRestore(o: RestoreFlags, state: TargetState, b: BackupFacts, runId: string): RestorePlan {
    const partial = o.tables.length > 0;
    const nonEmpty = state.exists && Object.keys(state.objects).length > 0;
    if (o.dataOnly && !partial) {
        throw new JobError("--data-only restores selected tables: add --tables (the runbook's §4.3)", 2);
    }
    if (o.clean && partial) {
        throw new JobError("--clean applies to whole-database restores (which always build a new database and swap it in): drop it, or use --data-only to replace the tables' rows", 2);
    }
    if (partial && b.format === "plain") {
        throw new JobError("selected tables cannot be restored from a plain SQL dump: restore it whole --into another database and copy them", 2);
    }
    if (!partial && b.scope !== "full" && !o.allowPartial) {
        throw new JobError(`${b.key} is a ${b.scope} backup: restoring it as the whole database would lose what it lacks; name tables with --tables, or add --allow-partial`, 2);
    }
    if (partial && !state.exists) {
        throw new JobError(`database ${o.into} does not exist: restore the whole database first (without --tables)`, 2);
    }
    if (nonEmpty && !o.force) {
        throw new JobError(
            `database ${o.into} exists and holds ${describeObjects(state.objects)}: add --force to ${partial ? "restore into it" : "replace it"} ` +
                "(a safety dump is taken first), or restore --into a new database",
            2,
        );
    }
    if (!partial && state.exists && state.sessions > 0 && !o.terminateConnections) {
        throw new JobError(`database ${o.into} has ${state.sessions} other session(s): stop the writers (see the restore runbook) or add --terminate-connections`, 2);
    }
    const steps = [`check the sha256 of ${b.key} on ${b.from}`, `check that the server has the roles the backup needs${o.createRoles ? " (create the missing ones from its globals, without passwords)" : ""}`];
    if (nonEmpty && o.safetyDump) {
        steps.push(`take a safety dump of ${o.into} to every target (${o.into}/safety/)`);
    }
    if (partial) {
        const what = o.dataOnly ? "replace the rows of" : "create";
        steps.push(
            `in one transaction on ${o.into}: ${what} ${o.tables.join(", ")} from the backup, compare their row counts with the backup's snapshot; any failure rolls back to what was there`,
        );
        return { backup: b.key, from: b.from, into: o.into, mode: "tables", nonEmpty, steps };
    }
    const scratch = workName("new", runId, o.into);
    const old = state.exists ? workName("old", runId, o.into) : undefined;
    steps.push(
        `create database ${scratch} with the backup's properties (owner, encoding, locale, settings, comment, privileges)`,
        `restore the backup into ${scratch} (owners and privileges kept)`,
        `check ${scratch}: row counts against the backup's snapshot, schema and database properties against the dump, sequences, large objects`,
    );
    if (state.exists && o.terminateConnections) {
        steps.push(`terminate other sessions on ${o.into}`);
    }
    steps.push(state.exists ? `swap in one transaction: rename ${o.into} to ${old}, ${scratch} to ${o.into}` : `rename ${scratch} to ${o.into}`);
    if (old) {
        steps.push(o.keepOriginal ? `keep the original as ${old}` : `drop the original (${old})`);
    }
    return { backup: b.key, from: b.from, into: o.into, mode: "database", nonEmpty, scratch, old, steps };
}
