import { spawn } from "child_process";
import { readdirSync } from "fs";
import * as path from "path";
import { ROOT } from "./pulumiMocks";

export const CLI = path.join(ROOT, "dist", "kx-backup.js");

export interface CliResult {
    code: number;
    stdout: string;
    stderr: string;
}

/** Runs the bundled kx-backup with exactly the given environment (plus PATH). */
export interface RunOptions {
    timeoutMs?: number;
    onStart?: (pid: number) => void;
    /** Called with every stderr chunk as it arrives (to act on a log line mid-run). */
    onStderr?: (chunk: string, all: string) => void;
    /** A command to run node under, e.g. ["faketime", "-f", "2026-11-26 10:00:00"]. */
    wrap?: string[];
    /** Run as this user (tests are root; a PVC's wrong owner only shows as another user). */
    uid?: number;
    gid?: number;
}

export function runCli(args: string[], env: Record<string, string>, opts: RunOptions = {}): Promise<CliResult> {
    return new Promise((resolve, reject) => {
        const argv = [process.execPath, "--unhandled-rejections=strict", CLI, ...args];
        const [cmd, ...rest] = [...(opts.wrap ?? []), ...argv];
        const child = spawn(cmd, rest, {
            env: { PATH: process.env.PATH ?? "", BACKUP_LOG_FORMAT: "json", ...env },
            stdio: ["ignore", "pipe", "pipe"],
            ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => {
            stderr += d;
            opts.onStderr?.(String(d), stderr);
        });
        const timer = setTimeout(() => {
            child.kill("SIGKILL");
            reject(new Error(`kx-backup ${args.join(" ")} timed out\n${stderr}`));
        }, opts.timeoutMs ?? 120_000);
        opts.onStart?.(child.pid!);
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code: code ?? -1, stdout, stderr });
        });
    });
}

/** The JSON log lines of a run. */
/** The newest backup's name (`ext`: .dump, .dump.tar, .sql) in a local target's folder for `db`; never its globals. */
export function newestBackup(localDir: string, db: string, ext = ".dump"): string {
    return readdirSync(path.join(localDir, db)).filter((f) => f.endsWith(ext) && !f.endsWith(".globals.sql")).sort().at(-1)!;
}

export function logLines(stderr: string): Record<string, any>[] {
    return stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** A manifest's row counts as `schema.table` → rows, for compact assertions. */
export function countsOf(manifest: { tables: { schema: string; name: string; rows: number }[] }): Record<string, number> {
    return Object.fromEntries(manifest.tables.map((t) => [`${t.schema}.${t.name}`, t.rows]));
}
