/**
 * A throwaway PostgreSQL cluster on 127.0.0.1: for `verify` outside Kubernetes (the pod has its
 * sidecar instead), and for the tests, the drill and the benchmark. Runs as the `postgres` user
 * when we are root (initdb refuses root); lives in a temp directory removed on `remove()`.
 */
import { execFileSync } from "child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
    });
}

/** Server bin directories by major (Debian layout), newest last. */
export function serverBinDirs(): { major: number; dir: string }[] {
    const root = "/usr/lib/postgresql";
    if (!existsSync(root)) {
        return [];
    }
    return readdirSync(root)
        .filter((n) => /^\d+$/.test(n) && existsSync(path.join(root, n, "bin", "initdb")))
        .map((n) => ({ major: Number(n), dir: path.join(root, n, "bin") }))
        .sort((a, b) => a.major - b.major);
}

function postgresUser(): { uid: number; gid: number } | undefined {
    if (process.getuid?.() !== 0) {
        return undefined;
    }
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    return { uid, gid };
}

export interface PgCluster {
    host: string;
    port: number;
    user: string;
    password: string;
    dataDir: string;
    /** Env for libpq clients (psql, pg_dump, kx-backup). */
    env(database?: string): Record<string, string>;
    psql(database: string, sql: string): string;
    stop(mode?: "fast" | "immediate"): void;
    start(): void;
    remove(): void;
}

/** Says which server tool is missing from a bin directory, and how to get it. */
export function missingPostgres(binDir: string): string | undefined {
    for (const tool of ["initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore", "psql"]) {
        if (!existsSync(path.join(binDir, tool))) {
            return `PostgreSQL server binaries are needed: ${path.join(binDir, tool)} is missing. ` +
                "Install them (Debian/Ubuntu: sudo apt-get install postgresql-15) or point to a bin directory";
        }
    }
    return undefined;
}

/** Starts a fresh cluster with password (scram) authentication over TCP. */
export async function startPostgres(opts: { binDir: string; password?: string; quiet?: boolean }): Promise<PgCluster> {
    const PG_BIN = opts.binDir;
    const missing = missingPostgres(PG_BIN);
    if (missing) {
        throw new Error(missing);
    }
    const base = mkdtempSync(path.join(os.tmpdir(), "kx-pg-"));
    const dataDir = path.join(base, "data");
    const password = opts.password ?? `pw-${Math.random().toString(36).slice(2)}`;
    const owner = postgresUser();
    chmodSync(base, 0o700);
    if (owner) {
        chownSync(base, owner.uid, owner.gid);
    }
    const pwfile = path.join(base, "pwfile");
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner) {
        chownSync(pwfile, owner.uid, owner.gid);
    }
    const run = (cmd: string, args: string[]) =>
        execFileSync(path.join(PG_BIN, cmd), args, {
            stdio: ["ignore", "pipe", "pipe"],
            ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
            env: { PATH: process.env.PATH ?? "", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" },
            cwd: base,
        });
    run("initdb", ["-D", dataDir, "-U", "postgres", "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]);
    rmSync(pwfile);
    const port = await freePort();
    const cluster: PgCluster = {
        host: "127.0.0.1",
        port,
        user: "postgres",
        password,
        dataDir,
        env: (database = "postgres") => ({
            PGHOST: "127.0.0.1",
            PGPORT: String(port),
            PGUSER: "postgres",
            PGPASSWORD: password,
            PGDATABASE: database,
        }),
        psql(database, sql) {
            return execFileSync(path.join(PG_BIN, "psql"), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", database, "-c", sql], {
                env: { PATH: process.env.PATH ?? "", LANG: "C.UTF-8", ...cluster.env(database) },
                stdio: ["ignore", "pipe", "pipe"],
                maxBuffer: 64 * 1024 * 1024,
            }).toString().trim();
        },
        start() {
            run("pg_ctl", ["-D", dataDir, "-l", path.join(base, "log"), "-w", "-t", "60", "start", "-o",
                `-p ${port} -k ${base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=50`]);
        },
        stop(mode = "fast") {
            try {
                run("pg_ctl", ["-D", dataDir, "-w", "-t", "60", "-m", mode, "stop"]);
            } catch {
                // Already stopped.
            }
        },
        remove() {
            cluster.stop("immediate");
            rmSync(base, { recursive: true, force: true });
        },
    };
    cluster.start();
    return cluster;
}

