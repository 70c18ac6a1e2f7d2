/**
 * `kx-backup verify`: the runbook's monthly checklist (§7.1), automated. Restores a backup into
 * a scratch database on a server that is not production (the pod's sidecar, an existing server
 * given by VERIFY_PGHOST, or a throwaway local cluster) and checks it step by step. The scratch
 * database is always dropped.
 */
import { execFile } from "child_process";
import { readFileSync } from "fs";
import * as path from "path";
import { Client } from "pg";
import { promisify } from "util";
import { connect, describeConnectError, libpqEnv, quoteIdent, sqlTable } from "./db";
import { PgCluster, serverBinDirs, startPostgres } from "./ephemeral";
import { fetchVerified, Fetched, locate, Located } from "./fetch";
import { failureLine, formatDuration, JobError, Logger } from "./log";
import { manifestKey } from "./naming";
import { tableLabel } from "./manifest";
import { chooseTools, discoverTools } from "./pgtools";
import { Settings } from "./settings";
import { VERIFY_SUFFIX } from "./catalog";
import { Target } from "./targets";

const execFileP = promisify(execFile);

export interface IntegrityCheck {
    name: string;
    /** A query returning the violating rows: no rows means the check passes. */
    sql: string;
}

/** Shipped defaults: the runbook's §6.2 step 5, and referential sanity of trades. */
export const DEFAULT_CHECKS: Record<string, IntegrityCheck[]> = {
    crypto_exchange: [
        { name: "no negative wallet balance", sql: "SELECT id, user_id, asset, balance FROM wallets WHERE balance < 0" },
        {
            name: "no trade referring to a missing order",
            sql: "SELECT t.id FROM trades t WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = t.buy_order_id) OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = t.sell_order_id)",
        },
    ],
};

export function loadChecks(file: string | undefined, database: string): IntegrityCheck[] {
    if (!file) {
        return DEFAULT_CHECKS[database] ?? [];
    }
    let parsed: unknown;
    try {
        parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
        throw new JobError(`VERIFY_CHECKS_FILE ${file} is not readable JSON: ${(e as Error).message}`, 2);
    }
    const list = (parsed as Record<string, unknown>)[database] ?? [];
    if (!Array.isArray(list) || !list.every((c) => typeof c?.name === "string" && typeof c?.sql === "string")) {
        throw new JobError(`VERIFY_CHECKS_FILE ${file}: "${database}" must be a list of {"name", "sql"}`, 2);
    }
    return list as IntegrityCheck[];
}

export type StepName = "exists" | "checksum" | "readable" | "restore" | "counts" | "integrity" | "connect" | "cleanup";

export interface StepResult {
    step: StepName;
    ok: boolean;
    detail: string;
    durationMs: number;
}

export interface VerifyReport {
    kind: "kx-backup/verify";
    database: string;
    key: string;
    target: string;
    ok: boolean;
    startedAt: string;
    finishedAt: string;
    /** Measured RTO for this backup's size: the restore step's duration. */
    restoreDurationMs?: number;
    size?: number;
    steps: StepResult[];
    failure?: string;
}

export interface VerifyOptions {
    database: string;
    backup: string;
    target: Target;
}

/** A server to restore into, and how to give it back. */
interface ScratchServer {
    settings: Settings;
    binDir?: string;
    release(): void;
}

async function scratchServer(s: Settings, serverMajor: number, log: Logger): Promise<ScratchServer> {
    if (s.verifyPgHost) {
        return {
            settings: { ...s, pgHost: s.verifyPgHost, pgPort: s.verifyPgPort, pgUser: s.verifyPgUser, pgPassword: s.verifyPgPassword, pgPassFile: undefined, pgSslMode: "prefer" },
            release: () => undefined,
        };
    }
    const dirs = serverBinDirs().filter((d) => d.major >= serverMajor);
    const bin = dirs.find((d) => d.major === serverMajor) ?? dirs[0];
    if (!bin) {
        throw new JobError(
            `no verify server: set VERIFY_PGHOST, or install PostgreSQL ${serverMajor} server binaries (initdb) so verify can start a throwaway one`,
            2,
        );
    }
    log.info(`starting a throwaway PostgreSQL ${bin.major} for the restore test`, { event: "verify.scratch", binDir: bin.dir });
    const cluster: PgCluster = await startPostgres({ binDir: bin.dir });
    return {
        settings: { ...s, pgHost: cluster.host, pgPort: cluster.port, pgUser: cluster.user, pgPassword: cluster.password, pgPassFile: undefined, pgSslMode: "disable" },
        binDir: bin.dir,
        release: () => cluster.remove(),
    };
}

export async function runVerify(s: Settings, o: VerifyOptions, log: Logger): Promise<VerifyReport> {
    const started = new Date();
    const steps: StepResult[] = [];
    const report: VerifyReport = {
        kind: "kx-backup/verify", database: o.database, key: "", target: o.target.kind, ok: false,
        startedAt: started.toISOString(), finishedAt: "", steps,
    };
    let current: StepName = "exists";
    let t0 = Date.now();
    const pass = (detail: string) => {
        steps.push({ step: current, ok: true, detail, durationMs: Date.now() - t0 });
        log.info(`verify ${o.database}: ${current} ok: ${detail}`, { event: "verify.step", database: o.database, step: current, ok: true });
    };
    const begin = (step: StepName) => {
        current = step;
        t0 = Date.now();
    };

    let located: Located | undefined;
    let fetched: Fetched | undefined;
    let scratch: ScratchServer | undefined;
    let admin: Client | undefined;
    let scratchDb: string | undefined;
    try {
        // 1. exists, non-empty, with its manifest.
        located = await locate(o.target, o.database, o.backup, { signingKey: s.signingKey, log, allowAnomalous: true });
        report.key = located.entry.key;
        report.size = located.manifest.size;
        pass(`${located.entry.key} (${located.manifest.size} bytes) with manifest`);

        // 2. the stored bytes are the ones the manifest describes.
        begin("checksum");
        fetched = await fetchVerified(located, s.workDir);
        pass(`sha256 ${fetched.sha256.slice(0, 16)}… matches`);

        // 3. the archive is readable (with the client tools of the backup's server major).
        begin("readable");
        const serverMajor = Math.floor(located.manifest.server.versionNum / 10000);
        scratch = await scratchServer(s, serverMajor, log);
        const tools = chooseTools(scratch.binDir ? [{ dir: scratch.binDir, major: serverMajor, version: String(serverMajor) }, ...discoverTools(s.pgBinDir)] : discoverTools(s.pgBinDir), serverMajor, located.manifest.server.version);
        const pgRestore = path.join(tools.dir, "pg_restore");
        const plain = located.manifest.format === "plain";

        if (plain) {
            pass("plain SQL: read by psql in the restore step");
        } else {
            const toc = await execFileP(pgRestore, ["--list", fetched.input], { maxBuffer: 256 * 1024 * 1024 }).catch((e) => {
                throw new JobError(`pg_restore cannot read ${located!.entry.key}: ${failureLine(String(e.stderr ?? e.message))}`);
            });
            pass(`${toc.stdout.split("\n").filter((l) => l && !l.startsWith(";")).length} archive entries`);
        }

        // 4. restore into a scratch database.
        begin("restore");
        admin = await connect(scratch.settings, "postgres").catch((e) => {
            throw new JobError(`verify server: ${e instanceof JobError ? e.message : describeConnectError(e, scratch!.settings, "postgres")}`);
        });
        scratchDb = `kx_verify_${o.database}_${Date.now().toString(36)}`.slice(0, 63);
        await admin.query(`CREATE DATABASE ${quoteIdent(scratchDb)}`);
        const env = libpqEnv({ ...scratch.settings, pgDatabase: scratchDb });
        const restoreStart = Date.now();
        if (plain) {
            await execFileP(path.join(tools.dir, "psql"), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", scratchDb, "-f", fetched.input], { env, maxBuffer: 64 * 1024 * 1024 })
                .catch((e) => {
                    throw new JobError(`restore of ${located!.entry.key} failed: ${failureLine(String(e.stderr ?? e.message))}`);
                });
        } else {
            const jobs = located.manifest.format === "custom" || located.manifest.format === "directory" ? s.restoreJobs : 1;
            await execFileP(pgRestore, ["--no-password", "--no-owner", "--no-privileges", "--exit-on-error", "--jobs", String(jobs), "--dbname", scratchDb, fetched.input], { env, maxBuffer: 64 * 1024 * 1024 })
                .catch((e) => {
                    throw new JobError(`restore of ${located!.entry.key} failed: ${failureLine(String(e.stderr ?? e.message))}`);
                });
        }
        report.restoreDurationMs = Date.now() - restoreStart;
        pass(`restored into ${scratchDb} in ${formatDuration(report.restoreDurationMs)}`);

        const db = await connect(scratch.settings, scratchDb);
        try {
            // 5. row counts equal the snapshot's.
            begin("counts");
            const mismatches: string[] = [];
            for (const t of located.manifest.tables) {
                const table = tableLabel(t);
                const expected = t.rows;
                const r = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${sqlTable(t)}`).catch((e) => {
                    mismatches.push(`${table}: ${(e as Error).message}`);
                    return undefined;
                });
                if (r && Number(r.rows[0].n) !== expected) {
                    mismatches.push(`${table}: ${r.rows[0].n} rows, manifest says ${expected}`);
                }
            }
            if (mismatches.length > 0) {
                throw new JobError(`row counts differ from the backup's snapshot: ${mismatches.join("; ")}`);
            }
            pass(`${located.manifest.tables.length} tables match the snapshot's counts`);

            // 6. integrity checks.
            begin("integrity");
            const checks = loadChecks(s.verifyChecksFile, o.database);
            const failed: string[] = [];
            for (const check of checks) {
                const r = await db.query(check.sql).catch((e) => {
                    failed.push(`${check.name}: query failed: ${(e as Error).message}`);
                    return undefined;
                });
                if (r && r.rowCount && r.rowCount > 0) {
                    failed.push(`${check.name}: ${r.rowCount} violating row(s), first ${JSON.stringify(r.rows[0])}`);
                }
            }
            if (failed.length > 0) {
                throw new JobError(`integrity check failed: ${failed.join("; ")}`);
            }
            pass(checks.length ? `${checks.length} check(s) passed: ${checks.map((c) => c.name).join(", ")}` : "no checks configured for this database");
        } finally {
            await db.end().catch(() => undefined);
        }

        // 7. a client can connect and read every table.
        begin("connect");
        const reader = await connect(scratch.settings, scratchDb);
        try {
            for (const t of located.manifest.tables) {
                await reader.query(`SELECT * FROM ${sqlTable(t)} LIMIT 1`);
            }
        } finally {
            await reader.end().catch(() => undefined);
        }
        pass(`a new session read ${located.manifest.tables.length} tables`);
        report.ok = true;
    } catch (e) {
        const message = e instanceof JobError ? e.message : (e as Error).message;
        steps.push({ step: current, ok: false, detail: message, durationMs: Date.now() - t0 });
        report.failure = `${current}: ${message}`;
        log.error(`verify ${o.database} failed at ${current}: ${message}`, { event: "verify.step", database: o.database, step: current, ok: false });
    } finally {
        // 8. the scratch database goes, always.
        begin("cleanup");
        try {
            if (admin && scratchDb) {
                await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(scratchDb)} WITH (FORCE)`);
            }
            steps.push({ step: "cleanup", ok: true, detail: scratchDb ? `dropped ${scratchDb}` : "nothing to drop", durationMs: Date.now() - t0 });
        } catch (e) {
            steps.push({ step: "cleanup", ok: false, detail: (e as Error).message, durationMs: Date.now() - t0 });
            report.ok = false;
            report.failure ??= `cleanup: could not drop ${scratchDb}: ${(e as Error).message}`;
        }
        await admin?.end().catch(() => undefined);
        scratch?.release();
        fetched?.cleanup();
    }
    report.finishedAt = new Date().toISOString();
    if (report.ok && located) {
        // Recorded beside the manifest only when everything passed: list and prune read it as "verified".
        await o.target.putSmall(`${located.entry.key}${VERIFY_SUFFIX}`, `${JSON.stringify(report, null, 2)}\n`).catch((e) => {
            report.ok = false;
            report.failure = `could not record the result beside ${manifestKey(located!.entry.key)}: ${(e as Error).message}`;
        });
    }
    log.info(
        report.ok
            ? `verify ${o.database} ok: ${report.key} restored in ${formatDuration(report.restoreDurationMs ?? 0)}, counts and checks pass`
            : `verify ${o.database} FAILED: ${report.failure}`,
        { event: "verify.done", database: o.database, key: report.key, ok: report.ok, restoreDurationMs: report.restoreDurationMs },
    );
    return report;
}
