/**
 * `kx-backup verify`: the runbook's monthly checklist (§7.1), automated. Checks every configured
 * copy's sha256, then runs the restore that restore runs (build.ts: the dump's database
 * properties, owners and privileges kept, after creating the backup's roles) into a scratch
 * database on a server that is not production, and compares it with the backup: row counts,
 * schema and database properties, sequences, large objects, integrity checks. So a backup
 * verifies if and only if it restores. The scratch database (and any role made for it on a
 * shared server) is always removed.
 */
import { Client } from "pg";
import { CLOCK_SKEW_MS, VERIFY_SUFFIX } from "../catalog";
import { connect, PG_VARS, sqlTable, VERIFY_VARS } from "../db";
import { fetchVerified, Fetched, locate, Located, pickTarget } from "../fetch";
import { fetchGlobals } from "../globals";
import { formatDuration, JobError, Logger } from "../log";
import { signManifest } from "../manifest";
import { manifestKey } from "../naming";
import { chooseTools, discoverTools } from "../pgtools";
import { ByCopy, carriedTimes, TimedRecord } from "../restoreTimes";
import { ScratchSpaceError } from "../scratch";
import { Settings } from "../settings";
import { Target } from "../targets";
import { buildDatabase, dropDatabase, dropOnStop } from "./build";
import { loadChecks, runIntegrityChecks } from "./checks";
import { CheckName, compareRestored } from "./compare";
import { checkCopy, CopyCheck, RestoreRecord, restoreHistory, rotationTarget } from "./copies";
import { prepare, Prepared } from "./prepare";
import { createRoles, missingRoles, rolesToCreate } from "./roles";
import { ScratchServer, scratchServer } from "./scratchServer";

export type StepName = "exists" | "copies" | "checksum" | "readable" | "roles" | "restore" | CheckName | "integrity" | "connect" | "cleanup";

export interface StepResult {
    step: StepName;
    ok: boolean;
    /** The check could not run for this backup (the detail says why). */
    skipped?: boolean;
    detail: string;
    durationMs: number;
}

export interface VerifyReport {
    kind: "kx-backup/verify";
    database: string;
    key: string;
    /** The backup's sha256 (its manifest's): binds the record to these very bytes. */
    sha256?: string;
    /** The target whose copy was test-restored. */
    target: string;
    ok: boolean;
    startedAt: string;
    finishedAt: string;
    /** pg_restore's part of a restore of this backup: the restore step's duration. */
    restoreDurationMs?: number;
    /**
     * The measured RTO for this backup's size: what `restore` of this copy does, end to end, as
     * timed here: finding the backup, fetching and hashing the copy, reading its table of
     * contents, making its roles, pg_restore, and comparing the result with the backup. (Left
     * out: reading earlier runs' records, a scratch server's start, which a restore does not
     * need, verify's other copies and extra checks, and restore's own safety dump and swap.)
     */
    restoreEndToEndMs?: number;
    /**
     * Each copy's newest timed restore: this run's for its own copy, and those earlier records
     * carried (restoreTimes.ts), so after the backup volume is lost the S3 copy's RTO is still
     * known, and judged, from whichever record is read.
     */
    restoreByCopy?: ByCopy;
    size?: number;
    /** Every copy checked, the test-restored one included. */
    copies: CopyCheck[];
    /** Which comparisons ran, and which could not for this backup. */
    checks: { ran: string[]; skipped: string[] };
    steps: StepResult[];
    failure?: string;
    /** HMAC-SHA256 with BACKUP_SIGNING_KEY, as manifests: only a signed record counts as "verified" when a key is set. */
    signature?: { alg: "HMAC-SHA256"; value: string };
}

export interface VerifyOptions {
    database: string;
    backup: string;
    /** Every configured target. */
    targets: Target[];
    /** Check and restore only this copy (`--from`). */
    from?: string;
}

class Steps {
    readonly list: StepResult[] = [];
    current: StepName = "exists";
    private t0 = Date.now();
    constructor(private readonly log: Logger, private readonly database: string) {}

    begin(step: StepName): void {
        this.current = step;
        this.t0 = Date.now();
    }

    record(ok: boolean, detail: string, skipped = false): void {
        this.list.push({ step: this.current, ok, ...(skipped ? { skipped } : {}), detail, durationMs: Date.now() - this.t0 });
        const say = ok ? (m: string, f: Record<string, unknown>) => this.log.info(m, f) : (m: string, f: Record<string, unknown>) => this.log.error(m, f);
        say(`verify ${this.database}: ${this.current} ${ok ? (skipped ? "skipped" : "ok") : "FAILED"}: ${detail}`, { event: "verify.step", database: this.database, step: this.current, ok });
        this.t0 = Date.now();
    }
}

/** The copy to test-restore, found; and the other copies to hash. */
async function chooseCopy(s: Settings, o: VerifyOptions, history: readonly RestoreRecord[], log: Logger): Promise<{ located: Located; others: Target[] }> {
    // An anomalous backup (much smaller than the one before) is restorable and worth testing.
    const opts = { signingKey: s.signingKey, log, allowAnomalous: true };
    if (o.from !== undefined) {
        return { located: await locate(pickTarget(o.targets, o.from), o.database, o.backup, opts), others: [] };
    }
    // A record from a clock far ahead would keep its copy "just tested", and skipped, until then.
    const latest = Date.now() + CLOCK_SKEW_MS;
    const kind = rotationTarget(o.targets.map((t) => t.kind), history.filter((h) => Date.parse(h.finishedAt) <= latest), o.database);
    const first = o.targets.find((t) => t.kind === kind)!;
    return { located: await locate(first, o.database, o.backup, opts), others: o.targets.filter((t) => t !== first) };
}

/** Creates the roles the backup needs on the scratch server; returns those created. */
async function scratchRoles(admin: Client, p: Prepared, log: Logger): Promise<{ created: string[]; detail: string }> {
    const missing = await missingRoles(admin, p.roles);
    if (missing.length === 0) {
        return { created: [], detail: p.roles.length ? `${p.roles.length} role(s) present` : "the backup names no roles" };
    }
    const globals = await fetchGlobals(p.located.target, p.located.manifest, log);
    if (!globals || missing.some((r) => !globals.roles.some((g) => g.name === r))) {
        // A backup older than stored globals: bare roles, so owners and grants can be restored.
        const bare = missing.filter((r) => !globals?.roles.some((g) => g.name === r));
        for (const r of bare) {
            await admin.query(`CREATE ROLE "${r.replace(/"/g, '""')}" NOLOGIN`);
        }
        const rest = missing.filter((r) => !bare.includes(r));
        if (globals && rest.length > 0) {
            await createRoles(admin, rolesToCreate(rest, globals, new Set()), globals, log);
        }
        return { created: missing, detail: `created ${missing.length} role(s), ${bare.length} of them bare (not in the backup's globals): ${missing.join(", ")}` };
    }
    const existing = new Set((await admin.query<{ n: string }>("SELECT rolname AS n FROM pg_roles")).rows.map((r) => r.n));
    const create = rolesToCreate(missing, globals, existing);
    await createRoles(admin, create, globals, log);
    return { created: create, detail: `created ${create.length} role(s) from the backup's globals: ${create.join(", ")}` };
}

export async function runVerify(s: Settings, o: VerifyOptions, log: Logger): Promise<VerifyReport> {
    const started = new Date();
    // Read first: a broken checks file is a settings error (exit 2), not a failure after a whole restore.
    const checks = loadChecks(s.verifyChecksFile, o.database);
    const steps = new Steps(log, o.database);
    const report: VerifyReport = {
        kind: "kx-backup/verify", database: o.database, key: "", target: "", ok: false,
        startedAt: started.toISOString(), finishedAt: "", copies: [], checks: { ran: [], skipped: [] }, steps: steps.list,
    };
    let located: Located | undefined;
    let fetched: Fetched | undefined;
    let scratch: ScratchServer | undefined;
    let admin: Client | undefined;
    let scratchDb: string | undefined;
    let releaseDb: (() => void) | undefined;
    let roles: string[] = [];
    let history: RestoreRecord[] = [];
    // What a restore would spend (see restoreEndToEndMs): the parts timed one by one, so the
    // scratch server's start and verify's own extra checks stay out. Finding the backup and
    // making its roles are in (a restore finds it too, and a restore onto a fresh cluster makes
    // them). A monotonic clock: a clock stepped back during a long verify never makes it short.
    let endToEnd = 0;
    const timed = async <T>(work: () => Promise<T>): Promise<T> => {
        const t0 = performance.now();
        try {
            return await work();
        } finally {
            endToEnd += performance.now() - t0;
        }
    };
    try {
        // 1. the backup exists, with its manifest, on the copy chosen for the restore test.
        // The records of earlier runs (untimed: a restore reads none): whose turn it is, and each copy's newest time.
        history = await restoreHistory(o.targets, o.database, s.signingKey);
        const chosen = await timed(() => chooseCopy(s, o, history, log));
        const found = endToEnd;
        located = chosen.located;
        report.key = located.entry.key;
        report.sha256 = located.manifest.sha256;
        report.size = located.manifest.size;
        steps.record(true, `${located.entry.key} (${located.manifest.size} bytes) with manifest on ${located.target.kind}`);

        // 2. every other copy: streamed through sha256 against its manifest.
        steps.begin("copies");
        const others = await Promise.all(chosen.others.map((t) => checkCopy(t, o.database, located!.entry.key, { signingKey: s.signingKey, log, allowAnomalous: true })));
        report.copies.push(...others.map((x) => x.check));
        if (others.length > 0) {
            steps.record(others.every((x) => x.check.ok), others.map((x) => `${x.check.target}: ${x.check.detail}`).join("; "));
        } else {
            steps.record(true, o.from ? `only the copy on ${o.from} (--from)` : "one target configured", true);
        }

        // 3. the copy to restore is the one the manifest describes (else a good other copy is).
        steps.begin("checksum");
        try {
            fetched = await timed(() => fetchVerified(located!, s.workDir));
        } catch (e) {
            if (e instanceof ScratchSpaceError) {
                // This side's scratch space failed: the copy was never judged, and is not blamed.
                throw e;
            }
            report.copies.unshift({ target: located.target.kind, ok: false, detail: (e as Error).message });
            const good = others.find((x) => x.check.ok && x.located);
            if (!good) {
                throw e;
            }
            steps.record(false, `${(e as Error).message}; restoring the good copy on ${good.check.target} instead`);
            steps.begin("checksum");
            // The time is the good copy's: a restore from it would never fetch the bad one first.
            endToEnd = found;
            located = good.located!;
            fetched = await timed(() => fetchVerified(located!, s.workDir));
        }
        report.target = located.target.kind;
        if (!report.copies.some((c) => c.target === located!.target.kind)) {
            report.copies.unshift({ target: located.target.kind, ok: true, detail: `sha256 ${fetched.sha256.slice(0, 16)}… matches` });
        }
        steps.record(true, `sha256 ${fetched.sha256.slice(0, 16)}… matches on ${located.target.kind}`);

        // 4. readable: its table of contents (or, for plain SQL, every statement: no meta-command).
        steps.begin("readable");
        if (located.manifest.scope === "data-only") {
            // Rows without their tables: nothing to restore them into, so no restore test can pass.
            throw new JobError(`${located.entry.key} is a data-only backup: it restores only into a database that has its tables ` +
                "(restore --tables … --data-only), never alone, so verify cannot test-restore it; its copies' sha256 were checked above");
        }
        const serverMajor = Math.floor(located.manifest.server.versionNum / 10000);
        scratch = await scratchServer(s, serverMajor, log);
        // BACKUP_PG_BIN_DIR when set; else the throwaway server's own tools match it best.
        const available = discoverTools(s.pgBinDir);
        const own = scratch.binDir && !s.pgBinDir ? [{ dir: scratch.binDir, major: serverMajor, version: String(serverMajor) }] : [];
        const tools = chooseTools([...own, ...available], serverMajor, located.manifest.server.version);
        const prepared = await timed(() => prepare(located!, fetched!, tools));
        steps.record(true, prepared.plain ? "plain SQL: every statement read, no psql meta-command" : `${prepared.toc.length} archive entries`);

        // 5. the roles the backup needs, created from its globals (the scratch server has none).
        steps.begin("roles");
        const vars = scratch.shared ? VERIFY_VARS : PG_VARS;
        admin = await connect(scratch.settings, "postgres", vars).catch((e) => {
            throw new JobError(`verify server: ${(e as Error).message}`);
        });
        const made = await timed(() => scratchRoles(admin!, prepared, log));
        roles = made.created;
        steps.record(true, made.detail);

        // 6. restore, as restore does.
        steps.begin("restore");
        scratchDb = `kx_verify_${o.database.toLowerCase().replace(/[^a-z0-9_]/g, "_")}_${Date.now().toString(36)}`.slice(0, 63);
        releaseDb = dropOnStop(scratch.settings, scratchDb, vars);
        report.restoreDurationMs = await timed(() => buildDatabase(admin!, scratch!.settings, prepared, scratchDb!, s.restoreJobs, log, vars));
        steps.record(true, `restored into ${scratchDb} in ${formatDuration(report.restoreDurationMs)} (owners and privileges kept)`);

        // 7. compare with the backup.
        const results = await timed(() => compareRestored(scratch!.settings, scratchDb!, prepared, (db) => connect(scratch!.settings, db, vars), s.restoreJobs));
        report.restoreEndToEndMs = Math.round(endToEnd);
        for (const r of results) {
            steps.begin(r.check);
            steps.record(r.ok, r.detail, r.skipped);
            (r.skipped ? report.checks.skipped : report.checks.ran).push(r.check);
        }
        const wrong = results.filter((r) => !r.ok);
        if (wrong.length > 0) {
            steps.current = wrong[0].check;
            throw new JobError(wrong.map((r) => r.detail).join("; "), 1);
        }

        const db = await connect(scratch.settings, scratchDb, vars);
        try {
            // 8. integrity checks: names and counts only in any message.
            steps.begin("integrity");
            const scope = located.manifest.scope;
            if (scope !== "full" && checks.length > 0) {
                // A schema-only backup's empty tables pass every check without checking anything,
                // and a backup of selected tables lacks the tables the checks read: neither is a
                // passing integrity check.
                report.checks.skipped.push("integrity");
                steps.record(true, `${checks.length} check(s) not run: they are about the whole database, ${located.entry.key} is a ${scope} backup`, true);
            } else {
                const failed = await runIntegrityChecks(db, checks);
                if (failed.length > 0) {
                    throw new JobError(`integrity check failed: ${failed.join("; ")}`);
                }
                report.checks.ran.push("integrity");
                steps.record(true, checks.length ? `${checks.length} check(s) passed: ${checks.map((c) => c.name).join(", ")}` : "no checks configured for this database");
            }

            // 9. a new session reads every table.
            steps.begin("connect");
            // Every table the dump defines: a schema-only or adopted backup records no counts,
            // and "read 0 tables" would pass without reading any.
            const defined = prepared.toc.filter((e) => e.desc === "TABLE").map((e) => ({ schema: e.schema, name: e.name }));
            const readable = defined.length > 0 ? defined : located.manifest.tables;
            for (const t of readable) {
                await db.query(`SELECT * FROM ${sqlTable(t)} LIMIT 1`);
            }
            steps.record(true, `a new session read ${readable.length} tables`);
        } finally {
            await db.end().catch(() => undefined);
        }
        report.ok = true;
    } catch (e) {
        const message = (e as Error).message;
        if (!steps.list.some((x) => x.step === steps.current && !x.ok)) {
            steps.record(false, message);
        }
        report.failure = `${steps.current}: ${message}`;
    } finally {
        // 10. the scratch database (and roles made on a shared server) go, always.
        steps.begin("cleanup");
        const done: string[] = [];
        try {
            if (admin && scratchDb) {
                await dropDatabase(admin, scratchDb);
                done.push(`dropped ${scratchDb}`);
            }
            if (admin && scratch?.shared) {
                for (const r of roles) {
                    await admin.query(`DROP ROLE IF EXISTS "${r.replace(/"/g, '""')}"`);
                }
                if (roles.length) {
                    done.push(`dropped role(s) ${roles.join(", ")}`);
                }
            }
            releaseDb?.();
            steps.record(true, done.length ? done.join("; ") : "nothing to drop");
        } catch (e) {
            steps.record(false, (e as Error).message);
            report.ok = false;
            report.failure ??= `cleanup: ${(e as Error).message}`;
        }
        await admin?.end().catch(() => undefined);
        scratch?.release();
        fetched?.cleanup();
    }
    return finish(report, o, located, history, log, s.signingKey);
}

/** Judges the copies, records `.verify.json` beside each good copy, and logs the outcome. */
async function finish(report: VerifyReport, o: VerifyOptions, located: Located | undefined, history: readonly RestoreRecord[], log: Logger, signingKey: string | undefined): Promise<VerifyReport> {
    report.finishedAt = new Date().toISOString();
    const good = report.copies.filter((c) => c.ok).map((c) => c.target);
    if (report.ok && located) {
        // A partial (schema-only, tables), safety or anomalous (much smaller) backup's time is no
        // copy's RTO: only a full, good one's is carried.
        const m = located.manifest;
        const own = m.scope === "full" && m.purpose !== "safety" && !m.anomaly ? [report] : [];
        const carry = (records: readonly TimedRecord[]) => {
            try {
                return carriedTimes(records, o.database, o.targets.map((t) => t.kind), new Date(report.finishedAt));
            } catch (e) {
                // Never a passing restore failed for the records around it: this run's own time at least.
                log.warn(`verify ${o.database}: earlier restore times not carried: ${(e as Error).message}`, { event: "verify.carry" });
                return undefined;
            }
        };
        // Never undefined: the gauge would fall back to this run's own time, a partial backup's included.
        report.restoreByCopy = carry([...history, ...own]) ?? carry(own) ?? {};
        // The restored copy passed everything: recorded beside each good copy (list and prune read it as "verified").
        await record(report, o, located, good, signingKey);
    }
    const bad = report.copies.filter((c) => !c.ok);
    if (bad.length > 0) {
        const copies = `${bad.map((c) => `the copy on ${c.target} is bad (${c.detail})`).join("; ")}; ` +
            (good.length ? `a good copy is on ${good.join(", ")}: restore with --from ${good[0]}` : "no good copy was found");
        report.failure = report.ok ? `copies: ${copies}` : `${report.failure}; also ${copies}`;
        report.ok = false;
    }
    log.info(
        report.ok
            ? `verify ${o.database} ok: ${report.key} (${report.copies.length} cop${report.copies.length === 1 ? "y" : "ies"} checked) restored from ${report.target} in ${formatDuration(report.restoreDurationMs ?? 0)} ` +
                  `(${formatDuration(report.restoreEndToEndMs ?? 0)} end to end, the measured RTO); checks: ${report.checks.ran.join(", ")}`
            : `verify ${o.database} FAILED: ${report.failure}`,
        { event: "verify.done", database: o.database, key: report.key, ok: report.ok, restoreDurationMs: report.restoreDurationMs, restoreEndToEndMs: report.restoreEndToEndMs, target: report.target },
    );
    return report;
}

async function record(report: VerifyReport, o: VerifyOptions, located: Located, good: string[], signingKey: string | undefined): Promise<void> {
    const body = `${JSON.stringify(signManifest(report, signingKey), null, 2)}\n`;
    for (const t of o.targets.filter((x) => good.includes(x.kind))) {
        // The newest result replaces an earlier one: the only write kx-backup lets overwrite.
        await t.putSmall(`${located.entry.key}${VERIFY_SUFFIX}`, body, { replace: true }).catch((e) => {
            report.ok = false;
            report.failure ??= `could not record the result beside ${manifestKey(located.entry.key)} on ${t.kind}: ${(e as Error).message}`;
        });
    }
}
