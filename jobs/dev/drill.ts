/**
 * npm run drill: the one-command local DR drill. Starts a throwaway PostgreSQL with the runbook's
 * databases, the S3 and Azure emulators, then runs the real kx-backup CLI: backup of every database
 * to local + S3 + Azure, list, verify, restore of crypto_exchange into crypto_exchange_test, prune
 * as a dry run, then `kx-backup status` per database. Prints a DR report from status against the
 * runbook's RPO/RTO, and removes everything it started.
 */
import type { DatabaseStatus } from "../src/status";
import { spawn } from "child_process";
import { mkdtempSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { checkRanAsImage, repositoryNodeFlags } from "./nodeFlags";
import { AzureEmulator, missingPostgres, PgCluster, S3Emulator, startAzurite, startPostgres, startS3 } from "./services";
import { cryptoExchangeSql, GOALERT_SQL, KONG_SQL, RUNBOOK_TARGETS, SINGLE_DB_RTO_MINUTES } from "./sample";

const CLI = path.join(__dirname, "kx-backup.js");
/** Run as the image runs it (its ENTRYPOINT's node flags). */
const NODE_FLAGS = repositoryNodeFlags(__dirname);

interface Step {
    code: number;
    ms: number;
    lines: Record<string, any>[];
    stdout: string;
    stderr: string;
}

function cli(args: string[], env: Record<string, string>): Promise<Step> {
    return new Promise((resolve) => {
        const start = Date.now();
        const inherited = { PATH: process.env.PATH ?? "", ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}) };
        const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], { env: { ...inherited, ...env, BACKUP_LOG_FORMAT: "json" }, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (code) => {
            const lines = stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
            resolve({ code: code ?? 1, ms: Date.now() - start, lines, stdout, stderr });
        });
    });
}

function say(text: string): void {
    process.stdout.write(`${text}\n`);
}

function size(bytes: number): string {
    return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

function secs(ms: number | undefined): string {
    return ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`;
}

function prerequisites(): string | undefined {
    const pg = missingPostgres();
    if (pg) {
        return pg;
    }
    for (const pkg of ["s3rver", "azurite", "@azure/storage-blob"]) {
        try {
            require.resolve(pkg);
        } catch {
            return `the ${pkg} package is missing: run npm install first`;
        }
    }
    return undefined;
}

interface Row {
    database: string;
    size?: number;
    backupMs?: number;
    verify: string;
    restoreMs?: number;
}

async function main(): Promise<number> {
    const missing = prerequisites();
    if (missing) {
        process.stderr.write(`drill: ${missing}\n`);
        return 2;
    }
    let pg: PgCluster | undefined;
    let s3: S3Emulator | undefined;
    let azure: AzureEmulator | undefined;
    const work = mkdtempSync(path.join(os.tmpdir(), "kx-drill-"));
    const cleanup = async () => {
        pg?.remove();
        await Promise.all([s3?.stop(), azure?.stop()]);
        rmSync(work, { recursive: true, force: true });
    };
    const onSignal = () => {
        void cleanup().finally(() => process.exit(130));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    let failures = 0;
    try {
        say("KrystalineX DR drill: throwaway PostgreSQL 15, S3 emulator (s3rver), Azure emulator (azurite)");
        [pg, s3, azure] = await Promise.all([startPostgres(), startS3(), startAzurite()]);
        for (const [db, sql] of [["crypto_exchange", cryptoExchangeSql(2000)], ["kong", KONG_SQL], ["goalert", GOALERT_SQL]] as const) {
            pg.psql("postgres", `CREATE DATABASE ${db}`);
            pg.psql(db, sql);
        }
        say(`  sample databases ready on 127.0.0.1:${pg.port}: crypto_exchange, kong, goalert`);
        const base = { ...s3.env(), ...azure.env(), BACKUP_LOCAL_DIR: path.join(work, "backups"), BACKUP_RETENTION_DAYS: "30", BACKUP_KEEP_MIN: "3" };
        const rows: Row[] = [];

        say("\n1. backup each database to local + S3 + Azure");
        for (const db of Object.keys(RUNBOOK_TARGETS)) {
            const r = await cli(["backup"], { ...base, ...pg.env(db) });
            const done = r.lines.find((l) => l.event === "backup.done");
            if (r.code !== 0 || !done) {
                failures++;
                say(`   ✗ ${db}: ${r.lines.find((l) => l.level === "error")?.msg ?? r.stderr.trim()}`);
                rows.push({ database: db, verify: "not run" });
                continue;
            }
            // Run as the image runs it, or the drill's figures are not the image's.
            try {
                checkRanAsImage(r.lines.find((l) => l.event === "backup.start")?.nodeFlags, NODE_FLAGS);
            } catch (e) {
                failures++;
                say(`   ✗ ${db}: ${(e as Error).message}`);
            }
            say(`   ✓ ${done.msg}`);
            rows.push({ database: db, size: done.bytes, backupMs: done.durationMs, verify: "" });
        }

        say("\n2. list");
        const list = await cli(["list"], { ...base, ...pg.env("postgres") });
        say(list.stdout.replace(/^/gm, "   ").trimEnd());

        say("\n3. verify each backup by restoring it into a throwaway server");
        for (const row of rows.filter((r) => r.size !== undefined)) {
            const r = await cli(["verify", "--json"], { ...base, ...pg.env(row.database) });
            if (r.code === 0) {
                const report = JSON.parse(r.stdout);
                row.verify = "passed";
                // The RTO is the whole restore (fetch, checks, pg_restore, comparison), not pg_restore's part.
                row.restoreMs = report.restoreEndToEndMs;
                say(`   ✓ ${row.database}: ${report.steps.length} steps passed, restored in ${secs(report.restoreDurationMs)} (${secs(report.restoreEndToEndMs)} end to end)`);
            } else {
                failures++;
                row.verify = "FAILED";
                say(`   ✗ ${row.database}: ${r.lines.find((l) => l.level === "error")?.msg ?? r.stderr.trim()}`);
            }
        }

        say("\n4. restore crypto_exchange into crypto_exchange_test (the runbook's §4.4)");
        const restore = await cli(["restore", "--into", "crypto_exchange_test"], { ...base, ...pg.env("crypto_exchange") });
        const restored = restore.lines.find((l) => l.event === "restore.done");
        if (restore.code === 0 && restored) {
            say(`   ✓ ${restored.msg}`);
            say(`     users in crypto_exchange_test: ${pg.psql("crypto_exchange_test", "SELECT count(*) FROM users")}`);
        } else {
            failures++;
            say(`   ✗ ${restore.lines.find((l) => l.level === "error")?.msg ?? restore.stderr.trim()}`);
        }

        say("\n5. prune, as a dry run");
        // No PGDATABASE: with one, prune works on that database only (a job's own, with its retention).
        const prune = await cli(["prune", "--dry-run"], base);
        for (const l of prune.lines.filter((x) => x.event === "prune.summary")) {
            say(`   ${l.msg}`);
        }
        if (prune.code !== 0) {
            failures++;
        }

        say("\n6. status: each database against its RPO and the single-database RTO (kx-backup status)");
        const statuses = new Map<string, DatabaseStatus>();
        for (const row of rows) {
            const t = RUNBOOK_TARGETS[row.database];
            const r = await cli(["status", "--json"], { ...base, ...pg.env(row.database), BACKUP_RPO_HOURS: String(t.rpoHours), BACKUP_RTO_MINUTES: String(SINGLE_DB_RTO_MINUTES) });
            const parsed = (() => {
                try {
                    return (JSON.parse(r.stdout) as DatabaseStatus[])[0];
                } catch {
                    return undefined;
                }
            })();
            if (!parsed) {
                failures++;
                say(`   ✗ ${row.database}: ${r.lines.find((l) => l.level === "error")?.msg ?? r.stderr.trim()}`);
                continue;
            }
            statuses.set(row.database, parsed);
            if (parsed.ok) {
                // Only the copies whose restore was timed are within the RTO; verify times one copy per run.
                const timed = Object.keys(parsed.restoreByCopy);
                const untimed = parsed.untimedCopies.length > 0 ? `; ${parsed.untimedCopies.join(", ")} not timed yet (verify times one copy per run)` : "";
                say(`   ✓ ${row.database}: within RPO on ${parsed.targets.map((x) => x.target).join(", ")}; restore from ${timed.join(", ")} within RTO${untimed}`);
            } else {
                failures++;
                parsed.problems.forEach((p) => say(`   ✗ ${p}`));
            }
        }

        say("\nDR report (kx-backup status; targets from the runbook: RPO per database, RTO 30 min for one database, 2 h for all)");
        const header = ["database", "size", "backup time", "schedule (RPO)", "verify", "restore time (RTO)", "within RTO", "status"];
        const table = rows.map((r) => {
            const t = RUNBOOK_TARGETS[r.database];
            const st = statuses.get(r.database);
            // This drill's own verify measured it to the millisecond; status keeps tenths of a minute.
            const restoreMs = r.restoreMs ?? (st?.newestVerified?.restoreMinutes !== undefined ? st.newestVerified.restoreMinutes * 60_000 : undefined);
            return [
                r.database,
                st?.newestFull ? size(st.newestFull.size) : r.size === undefined ? "-" : size(r.size),
                secs(r.backupMs),
                `${t.schedule} (${t.rpoHours} h)`,
                st?.newestVerified ? "passed" : r.verify || "-",
                secs(restoreMs),
                restoreMs === undefined ? "-" : restoreMs < SINGLE_DB_RTO_MINUTES * 60_000 ? "yes" : "NO",
                st ? (st.ok ? "ok" : `${st.problems.length} problem(s)`) : "unknown",
            ];
        });
        const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
        const fmt = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i])).join("  ")}`.trimEnd();
        say(fmt(header));
        table.forEach((row) => say(fmt(row)));
        const total = rows.reduce((n, r) => n + (r.restoreMs ?? 0), 0);
        say(`  all databases restored in ${secs(total)} (full-restore RTO: 2 h)`);
        say(failures === 0 ? "\ndrill passed" : `\ndrill FAILED: ${failures} step(s) failed`);
        return failures === 0 ? 0 : 1;
    } finally {
        await cleanup();
        process.removeListener("SIGINT", onSignal);
        process.removeListener("SIGTERM", onSignal);
    }
}

main().then(
    (code) => {
        process.exitCode = code;
    },
    (e) => {
        process.stderr.write(`drill failed: ${(e as Error).message}\n`);
        process.exitCode = 1;
    },
);
