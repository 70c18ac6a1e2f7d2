#!/usr/bin/env node
/**
 * kx-backup: the one entrypoint of the job image. Settings come from the environment (see
 * settings.ts); flags override them. Exit codes: 0 ok, 1 the work failed, 2 bad usage or
 * settings (nothing was touched).
 */
import { parseArgs, ParseArgsConfig } from "util";
import { rmSync } from "fs";
import { runArchive } from "./archive";
import { exportNamespace } from "./k8sExport";
import { runAdopt } from "./adopt";
import { scratchDir } from "./scratch";
import { collectStatus, renderStatus } from "./status";
import { runBackup } from "./backup";
import { BackupScope } from "./manifest";
import { collectList, pruneProblems, renderList, runPrune } from "./commands";
import { pickTarget } from "./fetch";
import { JobError, Logger } from "./log";
import { Event, notify } from "./notify";
import { runRestore, runVerify } from "./restore";
import { runRestoreArchive } from "./restore/archive";
import { collectDeleted, renderDeleted, runUndelete } from "./undelete";
import { describeSettings, loadSettings, notificationSettings, rawSecretValues, secretValues, Settings } from "./settings";
import { settleWithin, targetsFrom } from "./targets";
import { requestStop, runCleanups, ShutdownError, shutdownSignal, stopChildren, stopping, whenStopped } from "./shutdown";

export const VERSION = "0.1.0";

type Options = NonNullable<ParseArgsConfig["options"]>;

const COMMON: Options = {
    help: { type: "boolean", short: "h" },
    database: { type: "string", short: "d" },
    "log-format": { type: "string" },
    "local-dir": { type: "string" },
    "s3-bucket": { type: "string" },
    "azure-container": { type: "string" },
    "retention-days": { type: "string" },
    "keep-min": { type: "string" },
};

interface Command {
    summary: string;
    usage: string;
    options: Options;
    /** Notified on failure always, on success when enabled. */
    notifies: boolean;
    /** Resolves with what happened (for notifications); throws JobError on failure. */
    run(s: Settings, values: Record<string, unknown>, log: Logger): Promise<Omit<Event, "command" | "ok"> | undefined>;
}

const COMMANDS: Record<string, Command> = {
    backup: {
        summary: "dump one database to every configured target, write its manifest, then prune",
        usage: `kx-backup backup [--database NAME] [--format custom|directory|plain] [--jobs N]
                 [--schema-only | --data-only] [--table T ...] [--no-prune] [--accept-anomaly]

  Streams pg_dump once, hashed, to every target at once; writes <name>.manifest.json beside the
  dump on each target only when all of them hold it. Then prunes (unless --no-prune or BACKUP_PRUNE=false).
  A full backup much smaller than the previous good one (BACKUP_ANOMALY_*) is flagged anomalous:
  kept and restorable, notified as urgent, never counted as good; --accept-anomaly records an
  expected drop and makes this backup the new baseline.`,
        options: {
            format: { type: "string" },
            jobs: { type: "string", short: "j" },
            "schema-only": { type: "boolean" },
            "data-only": { type: "boolean" },
            table: { type: "string", short: "t", multiple: true },
            "no-prune": { type: "boolean" },
            "accept-anomaly": { type: "boolean" },
        },
        notifies: true,
        async run(s, v, log) {
            const targets = targetsFrom(s);
            const { key, manifest } = await runBackup(s, {
                schemaOnly: Boolean(v["schema-only"]),
                dataOnly: Boolean(v["data-only"]),
                tables: (v.table as string[] | undefined) ?? [],
                purpose: s.trigger,
                anomaly: { sizeDropPercent: s.anomalySizeDrop, rowsDropPercent: s.anomalyRowsDrop, minRows: s.anomalyMinRows, accept: Boolean(v["accept-anomaly"]) },
            }, targets, log);
            const anomalous = Boolean(manifest.anomaly);
            const done = {
                database: manifest.database,
                urgent: anomalous,
                message: anomalous
                    ? `backup ${key} is ANOMALOUS (kept, but not counted as a good backup): ${manifest.anomaly!.reasons.join("; ")}`
                    : `backup ${key}: ${manifest.size} bytes in ${(manifest.durationMs / 1000).toFixed(1)} s to ${manifest.targets.join(", ")}`,
                details: { key, bytes: manifest.size, durationMs: manifest.durationMs, sha256: manifest.sha256, scope: manifest.scope, anomalous, ...(anomalous ? { anomaly: manifest.anomaly } : {}) },
            };
            if (s.pruneAfterBackup && !v["no-prune"]) {
                const reports = await runPrune(targets, s.pgDatabase, s, { dryRun: false, now: new Date(), signingKey: s.signingKey, family: "dump" }, log);
                const problems = pruneProblems(reports);
                if (problems.length > 0) {
                    // The backup itself is good and committed; report its metrics, then fail the run for the prune.
                    await notify(s, { command: "backup", ok: true, ...done }, log);
                    throw new JobError(`backup ok, prune failed: ${problems.join("; ")}`);
                }
            }
            return done;
        },
    },
    list: {
        summary: "list backups per database and target, newest first (--deleted: those a delete hid)",
        usage: `kx-backup list [--database NAME] [--deleted] [--json]

  --deleted lists backups hidden by a delete whose data remains: behind an S3 delete marker, or
  an Azure soft-deleted blob or previous version. kx-backup undelete brings one back.`,
        options: { json: { type: "boolean" }, deleted: { type: "boolean" } },
        notifies: false,
        async run(s, v) {
            if (v.deleted) {
                const listing = await collectDeleted(targetsFrom(s), v.database as string | undefined);
                process.stdout.write(v.json ? `${JSON.stringify(listing, null, 2)}\n` : renderDeleted(listing));
                return undefined;
            }
            const rows = await collectList(targetsFrom(s), v.database as string | undefined, new Date(), { signingKey: s.signingKey });
            process.stdout.write(v.json ? `${JSON.stringify(rows, null, 2)}\n` : renderList(rows));
            return undefined;
        },
    },
    status: {
        summary: "is every database inside its RPO, with a recent verified restore inside its RTO? (exit 1 when not)",
        usage: `kx-backup status [--database NAME] [--json]

  Per database, read from every target: the newest complete full backup and its age against
  BACKUP_RPO_HOURS; the newest verified backup, its age against BACKUP_VERIFY_MAX_AGE_DAYS and its
  measured restore time against BACKUP_RTO_MINUTES; backups by kind on each target and whether
  every target holds the same newest backup; size and row-count trend; anomalies. Exit 0 when
  every database is within its objectives, 1 otherwise with one line per problem. A table on a
  terminal, JSON otherwise (or with --json).`,
        options: { json: { type: "boolean" } },
        notifies: false,
        async run(s, v, log) {
            const rows = await collectStatus(targetsFrom(s), s.pgDatabase, { rpoHours: s.rpoHours, rtoMinutes: s.rtoMinutes, verifyMaxAgeDays: s.verifyMaxAgeDays }, new Date(), s.signingKey);
            process.stdout.write(v.json || !process.stdout.isTTY ? `${JSON.stringify(rows, null, 2)}\n` : renderStatus(rows));
            const problems = rows.flatMap((r) => r.problems);
            for (const p of problems) {
                log.error(p, { event: "status.problem" });
            }
            if (problems.length > 0) {
                throw new JobError(`status: ${problems.length} problem(s) in ${rows.filter((r) => !r.ok).map((r) => r.database).join(", ")}`);
            }
            log.info(`status: ${rows.length} database(s) within their objectives`, { event: "status.ok" });
            return undefined;
        },
    },
    prune: {
        summary: "delete backups past retention, keeping the newest BACKUP_KEEP_MIN complete ones",
        usage: `kx-backup prune [--database NAME] [--dry-run] [--json]

  Per database and target: deletes complete backups older than BACKUP_RETENTION_DAYS (never the
  newest BACKUP_KEEP_MIN, never the newest verified one) and incomplete leftovers older than a day.
  If the newest complete backup is itself past retention, deletes nothing and exits 1.
  The database is --database, else PGDATABASE (a job's own: its retention is that database's);
  every database only when neither is set. Database dumps only: archives are pruned by their
  archive job, with their own retention.`,
        options: { "dry-run": { type: "boolean" }, json: { type: "boolean" } },
        notifies: true,
        async run(s, v, log) {
            // PGDATABASE counts as --database: run from a job's template, `prune` would otherwise
            // apply that one database's retention (kong: 7 days) to every other database's folder.
            const reports = await runPrune(targetsFrom(s), s.pgDatabase, s, { dryRun: Boolean(v["dry-run"]), now: new Date(), signingKey: s.signingKey, family: "dump" }, log);
            if (v.json) {
                process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
            }
            const problems = pruneProblems(reports);
            if (problems.length > 0) {
                throw new JobError(`prune: ${problems.join("; ")}`);
            }
            const deleted = reports.reduce((n, r) => n + (v["dry-run"] ? r.plan.delete.length : r.deleted.length), 0);
            const hidden = reports.reduce((n, r) => n + r.hidden.length, 0);
            return {
                database: s.pgDatabase,
                message: `prune: ${v["dry-run"] ? "would delete" : "deleted"} ${deleted} backup(s)${hidden > 0 ? `, hid ${hidden} (their data remains: kx-backup list --deleted)` : ""}`,
            };
        },
    },
    verify: {
        summary: "check every copy of a backup and restore one into a scratch database (the runbook's §7.1)",
        usage: `kx-backup verify [--database NAME] [--backup latest|NAME] [--from local|s3|azure] [--json]

  1 exists with its manifest, 2 every other target's copy streams to the manifest's sha256,
  3 the copy to restore (rotating through the targets across runs; --from: only that one)
  matches too, 4 it is readable, 5 the roles it needs are created from its globals, 6 it restores
  as restore does (database properties, owners, privileges) into a scratch database (VERIFY_PGHOST,
  else a throwaway local PostgreSQL), 7 row counts, schema, database properties, sequences and
  large objects match the backup, 8 integrity checks pass, 9 a client reads every table, 10 the
  scratch database is dropped. Writes <name>.verify.json beside each good copy when all pass.`,
        options: { backup: { type: "string", short: "b" }, from: { type: "string" }, json: { type: "boolean" } },
        notifies: true,
        async run(s, v, log) {
            const database = requireDatabase(s);
            const targets = targetsFrom(s);
            const from = v.from as string | undefined;
            if (from !== undefined) {
                pickTarget(targets, from);
            }
            const report = await runVerify(s, { database, backup: (v.backup as string | undefined) ?? "latest", targets, from }, log);
            if (v.json) {
                process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
            }
            if (!report.ok) {
                throw new JobError(`verify ${database} failed at ${report.failure}`);
            }
            return {
                database,
                message: `verify ${report.key}: restored from ${report.target} in ${((report.restoreDurationMs ?? 0) / 1000).toFixed(1)} s ` +
                    `(${((report.restoreEndToEndMs ?? 0) / 1000).toFixed(1)} s end to end); ${report.checks.ran.join(", ")} pass`,
                details: { key: report.key, target: report.target, restoreDurationMs: report.restoreDurationMs, restoreEndToEndMs: report.restoreEndToEndMs, restoreByCopy: report.restoreByCopy, size: report.size },
            };
        },
    },
    restore: {
        summary: "restore a backup into a database (whole, selected tables, or another database)",
        usage: `kx-backup restore --database NAME --into DBNAME [--backup latest|NAME] [--from local|s3|azure]
                  [--tables T,...] [--data-only] [--force] [--no-safety-dump] [--create-roles]
                  [--terminate-connections] [--keep-original] [--allow-partial] [--clean] [--plan]

  Restores into the server of PGHOST/PGPORT. Checks the backup's sha256 and the roles it needs
  first (--create-roles creates missing ones from its globals, without passwords). A whole
  database is built beside the target, checked against the backup, then swapped in by renaming;
  the original is dropped after the swap (--keep-original keeps it). Replacing a non-empty
  database needs --force and takes a safety dump first (unless --no-safety-dump). --tables
  restores exactly the tables named ([schema.]table, "Quoted", wildcards) in one transaction.
  --clean is accepted: a whole restore always builds anew. --plan prints the steps, changes nothing.`,
        options: {
            backup: { type: "string", short: "b" },
            from: { type: "string" },
            into: { type: "string" },
            tables: { type: "string" },
            "data-only": { type: "boolean" },
            clean: { type: "boolean" },
            force: { type: "boolean" },
            "no-safety-dump": { type: "boolean" },
            "create-roles": { type: "boolean" },
            "keep-original": { type: "boolean" },
            "allow-partial": { type: "boolean" },
            "terminate-connections": { type: "boolean" },
            plan: { type: "boolean" },
        },
        notifies: true,
        async run(s, v, log) {
            const database = requireDatabase(s);
            if (typeof v.into !== "string") {
                throw new JobError("restore needs --into DBNAME (the database to restore into)", 2);
            }
            const targets = targetsFrom(s);
            const result = await runRestore(s, {
                database,
                backup: (v.backup as string | undefined) ?? "latest",
                into: v.into,
                tables: typeof v.tables === "string" ? splitTables(v.tables) : [],
                dataOnly: Boolean(v["data-only"]),
                clean: Boolean(v.clean),
                force: Boolean(v.force),
                safetyDump: !v["no-safety-dump"],
                createRoles: Boolean(v["create-roles"]),
                keepOriginal: Boolean(v["keep-original"]),
                allowPartial: Boolean(v["allow-partial"]),
                terminateConnections: Boolean(v["terminate-connections"]),
                planOnly: Boolean(v.plan),
                target: pickTarget(targets, v.from as string | undefined),
                safetyTargets: targets,
            }, log);
            if ("steps" in result) {
                process.stdout.write(`${result.steps.map((x, i) => `${i + 1}. ${x}`).join("\n")}\n`);
                return undefined;
            }
            return { database, message: `restore of ${result.plan.backup} into ${v.into} took ${(result.durationMs / 1000).toFixed(1)} s`, details: { durationMs: result.durationMs } };
        },
    },
    undelete: {
        summary: "bring back a backup that a delete hid on a versioned S3 bucket or Azure container",
        usage: `kx-backup undelete --database NAME [--backup NAME] [--from s3|azure]

  Brings back the newest complete backup hidden by a delete (or the one named): its dump,
  manifest, globals and verify record. S3: removes the delete markers (needs
  s3:ListBucketVersions and s3:DeleteObjectVersion). Azure: undeletes a soft-deleted blob, or
  copies the newest previous version back. A local directory has no versions.`,
        options: { backup: { type: "string", short: "b" }, from: { type: "string" } },
        notifies: true,
        async run(s, v, log) {
            const database = requireDatabase(s);
            const r = await runUndelete(targetsFrom(s), { database, backup: v.backup as string | undefined, from: v.from as string | undefined }, log);
            const where = [...new Set(r.restored.map((x) => x.target))].join(", ");
            return { database, message: `undelete ${r.backup}: restored ${r.restored.length} object(s) on ${where}`, details: { backup: r.backup, restored: r.restored } };
        },
    },
    adopt: {
        summary: "take over dumps kx-backup did not write (the runbook's), so they join retention, verify and restore",
        usage: `kx-backup adopt --database NAME [--backup NAME] [--from local|s3|azure] [--scope full|schema-only|data-only|tables]

  A dump named like a backup (<db>/<db>-YYYYMMDD-HHMMSS.dump) without a manifest is "foreign":
  listed, never pruned, never restored as latest. adopt checks it (pg_restore --list reads it;
  format and versions from its header; sha256 and size) and writes a manifest marked adopted
  beside it (no row counts). Without --backup: every foreign dump of the database; without
  --from: on every target that holds one.`,
        options: { backup: { type: "string", short: "b" }, from: { type: "string" }, scope: { type: "string" } },
        notifies: false,
        async run(s, v, log) {
            const database = requireDatabase(s);
            const scope = v.scope as string | undefined;
            if (scope !== undefined && !["full", "schema-only", "data-only", "tables"].includes(scope)) {
                throw new JobError(`--scope ${scope}: expected full, schema-only, data-only or tables`, 2);
            }
            const all = targetsFrom(s);
            const targets = v.from === undefined ? all : [pickTarget(all, v.from as string)];
            const adopted = await runAdopt(targets, {
                database,
                backup: v.backup as string | undefined,
                scope: scope as BackupScope | undefined,
                signingKey: s.signingKey,
                pgBinDir: s.pgBinDir,
                workDir: s.workDir,
            }, log);
            const message = adopted.length === 0 ? `adopt: no foreign dump of ${database} found` : `adopt: ${adopted.length} dump(s) adopted: ${adopted.map((a) => `${a.key} on ${a.target}`).join(", ")}`;
            log.info(message, { event: "adopt.summary", adopted: adopted.length });
            return undefined;
        },
    },
    archive: {
        summary: "archive a directory (a volume, exported configuration) as tar.gz to every target, then prune",
        usage: `kx-backup archive --name NAME (--path DIR | --kubernetes-namespace NS) [--if-changed] [--no-prune]

  Streams a gzipped tar of DIR (symlinks, modes, empty directories kept) to every target as
  <prefix>/NAME/NAME-YYYYMMDD-HHMMSS.tar.gz with a manifest (sha256, file count, bytes, content
  hash). --if-changed skips the upload when the content equals the newest complete archive's.
  --kubernetes-namespace exports that namespace's ConfigMaps and Secrets (through the API, with
  the pod's ServiceAccount) and archives them; they go only to encrypted targets (S3, Azure).`,
        options: { name: { type: "string" }, path: { type: "string" }, "kubernetes-namespace": { type: "string" }, "if-changed": { type: "boolean" }, "no-prune": { type: "boolean" } },
        notifies: true,
        async run(s, v, log) {
            const namespace = v["kubernetes-namespace"] as string | undefined;
            if (typeof v.name !== "string" || (typeof v.path === "string") === (namespace !== undefined)) {
                throw new JobError("archive needs --name NAME and one of --path DIR or --kubernetes-namespace NS", 2);
            }
            let targets = targetsFrom(s);
            let dir = v.path as string | undefined;
            let exported: string | undefined;
            if (namespace !== undefined) {
                // Secrets go only where they are encrypted at rest by the store: not a plain directory.
                const skipped = targets.filter((t) => t.kind === "local");
                targets = targets.filter((t) => t.kind !== "local");
                if (skipped.length > 0) {
                    log.warn("the local target is skipped for a configuration export: Secrets go only to encrypted targets (S3, Azure)", { event: "archive.local-skipped" });
                }
                if (targets.length === 0) {
                    throw new JobError("a configuration export needs an encrypted target: set BACKUP_S3_BUCKET or BACKUP_AZURE_CONTAINER", 2);
                }
            }
            let r: Awaited<ReturnType<typeof runArchive>>;
            try {
                if (namespace !== undefined) {
                    exported = scratchDir(s.workDir, "kx-k8s-");
                    dir = exported;
                    const counts = await exportNamespace(s, namespace, exported);
                    log.info(`exported namespace ${namespace}: ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ")}`, { event: "archive.export", namespace, ...counts });
                }
                r = await runArchive({ name: v.name, dir: dir!, ifChanged: Boolean(v["if-changed"]), signingKey: s.signingKey }, targets, log);
            } finally {
                if (exported) {
                    rmSync(exported, { recursive: true, force: true });
                }
            }
            if (!r.skipped && s.pruneAfterBackup && !v["no-prune"]) {
                const problems = pruneProblems(await runPrune(targets, v.name, s, { dryRun: false, now: new Date(), signingKey: s.signingKey, family: "archive" }, log));
                if (problems.length > 0) {
                    throw new JobError(`archive ok, prune failed: ${problems.join("; ")}`);
                }
            }
            return {
                database: v.name,
                message: r.skipped ? `archive ${v.name}: unchanged, nothing uploaded` : `archive ${r.key}: ${r.manifest!.size} bytes`,
                details: r.skipped ? { skipped: true } : { key: r.key, bytes: r.manifest!.size, durationMs: r.manifest!.durationMs },
            };
        },
    },
    "restore-archive": {
        summary: "extract an archive into a directory, after checking its sha256",
        usage: `kx-backup restore-archive --name NAME --into DIR [--backup latest|NAME] [--from TARGET] [--force] [--same-owner]

  Refuses a non-empty DIR without --force, and any archive with a path that would land outside DIR,
  a device node or a FIFO. Strips setuid/setgid/sticky bits; keeps file owners only with
  --same-owner. A failed extraction leaves DIR as it was.`,
        options: { name: { type: "string" }, into: { type: "string" }, backup: { type: "string", short: "b" }, from: { type: "string" }, force: { type: "boolean" }, "same-owner": { type: "boolean" } },
        notifies: true,
        async run(s, v, log) {
            if (typeof v.name !== "string" || typeof v.into !== "string") {
                throw new JobError("restore-archive needs --name NAME and --into DIR", 2);
            }
            const r = await runRestoreArchive({
                name: v.name,
                backup: (v.backup as string | undefined) ?? "latest",
                into: v.into,
                force: Boolean(v.force),
                sameOwner: Boolean(v["same-owner"]),
                target: pickTarget(targetsFrom(s), v.from as string | undefined),
                workDir: s.workDir,
                signingKey: s.signingKey,
            }, log);
            return { database: v.name, message: `restore-archive ${r.key} into ${v.into}: ${r.files} files` };
        },
    },
};

function mainHelp(): string {
    const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
    const settings = describeSettings()
        .map((d) => `  ${d.env.padEnd(32)} ${d.doc}${d.defaultText ? ` [default: ${d.defaultText}]` : ""}${d.secret ? " (secret)" : ""}`)
        .join("\n");
    return `kx-backup ${VERSION}: PostgreSQL backups streamed to local disk, S3 and Azure Blob

Usage: kx-backup <command> [options]     kx-backup <command> --help

Commands:
${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`).join("\n")}

Common options (override the environment):
  -d, --database NAME        PGDATABASE
      --local-dir DIR        BACKUP_LOCAL_DIR
      --s3-bucket NAME       BACKUP_S3_BUCKET
      --azure-container NAME BACKUP_AZURE_CONTAINER
      --retention-days N     BACKUP_RETENTION_DAYS
      --keep-min N           BACKUP_KEEP_MIN
      --log-format F         BACKUP_LOG_FORMAT (auto, json, text)

Environment:
${settings}

Exit codes: 0 ok, 1 the work failed, 2 bad usage or settings (nothing touched).
`;
}

/** Flags as environment overrides, so they go through the same validation as the environment. */
function flagEnv(v: Record<string, unknown>): Record<string, string> {
    const map: Record<string, string> = {
        database: "PGDATABASE",
        "log-format": "BACKUP_LOG_FORMAT",
        "local-dir": "BACKUP_LOCAL_DIR",
        "s3-bucket": "BACKUP_S3_BUCKET",
        "azure-container": "BACKUP_AZURE_CONTAINER",
        "retention-days": "BACKUP_RETENTION_DAYS",
        "keep-min": "BACKUP_KEEP_MIN",
        format: "BACKUP_FORMAT",
        jobs: "BACKUP_JOBS",
    };
    const env: Record<string, string> = {};
    for (const [flag, name] of Object.entries(map)) {
        if (typeof v[flag] === "string") {
            env[name] = v[flag] as string;
        }
    }
    return env;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
    const [name, ...rest] = argv;
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
        process.stdout.write(mainHelp());
        return name === undefined ? 2 : 0;
    }
    if (name === "--version" || name === "version") {
        process.stdout.write(`${VERSION}\n`);
        return 0;
    }
    const command = COMMANDS[name];
    if (!command) {
        process.stderr.write(`kx-backup: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(", ")}; see kx-backup --help)\n`);
        return 2;
    }
    let values: Record<string, unknown>;
    try {
        values = parseArgs({ args: rest, options: { ...COMMON, ...command.options }, allowPositionals: false, strict: true }).values;
    } catch (e) {
        process.stderr.write(`kx-backup ${name}: ${(e as Error).message}\n\nUsage: ${command.usage}\n`);
        if (command.notifies) {
            // A CronJob whose arguments this image does not know (a stack newer than its image)
            // would otherwise fail every run in silence.
            await notifyBroken(name, env, `bad arguments: ${(e as Error).message}`);
        }
        return 2;
    }
    if (values.help) {
        process.stdout.write(`Usage: ${command.usage}\n\nSee kx-backup --help for the common options and environment.\n`);
        return 0;
    }
    const loaded = loadSettings({ ...env, ...flagEnv(values) });
    if (!loaded.ok) {
        // Redacted too: a mistyped setting may hold a secret (a SAS URL pasted as the account URL).
        const quiet = new Logger("text", process.stderr);
        quiet.addSecrets(rawSecretValues({ ...env, ...flagEnv(values) }));
        for (const err of loaded.errors) {
            process.stderr.write(`kx-backup ${name}: ${quiet.redact(err)}\n`);
        }
        if (command.notifies) {
            await notifyBroken(name, { ...env, ...flagEnv(values) }, `invalid settings: ${loaded.errors.join("; ")}`);
        }
        return 2;
    }
    const s = loaded.settings;
    const log = Logger.resolve(s.logFormat);
    log.addSecrets(secretValues(s));
    activeLog = log;
    const commandName = name as Event["command"];
    const failed = async (message: string, exitCode: number, event: string): Promise<number> => {
        log.error(message, { event, exitCode });
        if (command.notifies) {
            await notify(s, { command: commandName, ok: false, database: s.pgDatabase ?? (values.name as string | undefined), message: log.redact(message) }, log);
        }
        return exitCode;
    };
    const running = command.run(s, values, log);
    // Settled below either way; this keeps a late rejection (after a stop) from going unhandled.
    running.catch(() => undefined);
    let done: Awaited<typeof running>;
    try {
        done = await Promise.race([running, whenStopped()]);
    } catch (e) {
        if (stopping()) {
            const late = await stopped(name, running, log, failed);
            if (typeof late === "number") {
                return late;
            }
            done = late.done;
        } else {
            const err = e instanceof JobError ? e : new JobError(`${name} failed: ${(e as Error).message}`);
            return failed(err.message, err.exitCode, `${name}.failed`);
        }
    }
    if (command.notifies && done) {
        await notify(s, { command: commandName, ok: true, ...done }, log);
    }
    return 0;
}

/** A broken CronJob must not fail in silence: notifies with what can be read of the environment, redacted. */
async function notifyBroken(name: string, env: Record<string, string | undefined>, message: string): Promise<void> {
    const partial = notificationSettings(env);
    const quiet = new Logger("text", process.stderr);
    quiet.addSecrets([...rawSecretValues(env), ...secretValues(partial)]);
    await notify(partial, { command: name as Event["command"], ok: false, database: partial.pgDatabase, message: quiet.redact(message) }, quiet);
}

/** The running command's logger, so even an internal error is redacted. */
let activeLog: Logger | undefined;

/** How long a stopped command gets to unwind through its own cleanup before the backstop runs. */
const UNWIND_MS = 20_000;

/**
 * After SIGTERM/SIGINT: children are already being stopped; let the command unwind (abort
 * uploads, remove partial files, drop scratch databases), run what cleanups remain, then report
 * one failure line and notify. Exit 143.
 */
async function stopped<T>(name: string, running: Promise<T>, log: Logger, failed: (m: string, code: number, event: string) => Promise<number>): Promise<number | { done: T }> {
    const reason = shutdownSignal.reason as ShutdownError;
    const settled = await settleWithin(running, UNWIND_MS);
    const leftovers = await runCleanups();
    if (settled === "resolved") {
        // It finished before it could stop (a step that cannot be interrupted, the last commit):
        // its result stands, and saying "nothing was committed" would be a lie.
        log.warn(`${name} received ${reason.signalName} after its work was done: the result stands (see above)`, { event: `${name}.stopped-late` });
        return { done: await running };
    }
    const what = settled === "timeout" ? `; it did not stop within ${UNWIND_MS / 1000} s, cleanups were forced` : "";
    const cleanup = leftovers.length ? `; cleanup failed: ${leftovers.join("; ")}` : "; partial uploads and temporary files removed";
    return failed(`${name} stopped by ${reason.signalName} before it finished: nothing was committed${what}${cleanup}`, reason.exitCode, `${name}.stopped`);
}

/** SIGTERM (Kubernetes: deadline, drain, delete) and SIGINT (Ctrl-C): stop cleanly, once. */
function installSignalHandlers(): void {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
        process.on(signal, () => {
            if (stopping()) {
                return;
            }
            requestStop(signal);
            void stopChildren();
        });
    }
}

/** `--tables a,"B,c".d`: commas inside double quotes belong to the name. */
export function splitTables(value: string): string[] {
    const out: string[] = [];
    let cur = "";
    let quoted = false;
    for (const c of value) {
        if (c === '"') {
            quoted = !quoted;
        }
        if (c === "," && !quoted) {
            out.push(cur.trim());
            cur = "";
        } else {
            cur += c;
        }
    }
    out.push(cur.trim());
    return out.filter(Boolean);
}

function requireDatabase(s: Settings): string {
    if (!s.pgDatabase) {
        throw new JobError("no database named: set PGDATABASE or --database", 2);
    }
    return s.pgDatabase;
}

if (require.main === module) {
    installSignalHandlers();
    // A promise nobody handled is a bug: say so in one line (never a stack trace with secrets), exit 70.
    process.on("uncaughtException", (e) => {
        const message = e instanceof Error ? e.message : String(e);
        process.stderr.write(`kx-backup: internal error (please report): ${activeLog ? activeLog.redact(message) : message}\n`);
        process.exit(70);
    });
    let settled = false;
    // An await on a promise that can never settle would let the event loop drain and exit 0
    // with nothing done: that is a bug, and must look like one.
    process.on("beforeExit", () => {
        if (!settled) {
            process.stderr.write("kx-backup: internal error (please report): the command stopped waiting without finishing\n");
            process.exit(70);
        }
    });
    main(process.argv.slice(2)).finally(() => (settled = true)).then(
        (code) => {
            process.exitCode = code;
            if (stopping()) {
                // Sockets of aborted uploads may linger: the stop is reported, leave now.
                process.exit(code);
            }
        },
        (e) => {
            process.stderr.write(`kx-backup: unexpected failure: ${(e as Error).message}\n`);
            process.exitCode = 1;
        },
    );
}
