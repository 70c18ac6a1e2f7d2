/**
 * Throwaway services on 127.0.0.1 for tests, the drill and the benchmark: a PostgreSQL cluster
 * (run as the `postgres` user when we are root: initdb refuses root), the s3rver S3 emulator and
 * the azurite Azure Blob emulator. Everything lives in a temp directory and is removed on stop.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import { existsSync, mkdtempSync, rmSync, chmodSync, chownSync, writeFileSync } from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export const PG_BIN = process.env.KX_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";

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

export async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        const ok = await new Promise<boolean>((resolve) => {
            const s = net.connect(port, "127.0.0.1");
            s.once("connect", () => {
                s.destroy();
                resolve(true);
            });
            s.once("error", () => resolve(false));
        });
        if (ok) {
            return;
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
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

export function missingPostgres(): string | undefined {
    for (const tool of ["initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore", "psql"]) {
        if (!existsSync(path.join(PG_BIN, tool))) {
            return `PostgreSQL 15 is needed: ${path.join(PG_BIN, tool)} is missing. ` +
                "Install it with: sudo apt-get install postgresql-15 (Debian/Ubuntu), or set KX_TEST_PG_BIN to a bin directory";
        }
    }
    return undefined;
}

/** Starts a fresh cluster with password (scram) authentication over TCP. */
export async function startPostgres(opts: { password?: string } = {}): Promise<PgCluster> {
    const missing = missingPostgres();
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
                env: { ...process.env, ...cluster.env(database) },
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

export interface S3Emulator {
    endpoint: string;
    bucket: string;
    env(): Record<string, string>;
    stop(): Promise<void>;
}

/** s3rver: path-style addressing, fixed S3RVER credentials, no versioning. */
export async function startS3(bucket = "backups"): Promise<S3Emulator> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const S3rver = require("s3rver");
    const directory = mkdtempSync(path.join(os.tmpdir(), "kx-s3-"));
    const port = await freePort();
    const server = new S3rver({ port, address: "127.0.0.1", silent: true, directory, configureBuckets: [{ name: bucket }] });
    await server.run();
    const endpoint = `http://127.0.0.1:${port}`;
    return {
        endpoint,
        bucket,
        env: () => ({
            BACKUP_S3_BUCKET: bucket,
            BACKUP_S3_ENDPOINT: endpoint,
            BACKUP_S3_FORCE_PATH_STYLE: "true",
            AWS_REGION: "us-east-1",
            AWS_ACCESS_KEY_ID: "S3RVER",
            AWS_SECRET_ACCESS_KEY: "S3RVER",
        }),
        async stop() {
            await server.close();
            rmSync(directory, { recursive: true, force: true });
        },
    };
}

/** Azurite's published development account (documented by Microsoft; not a secret). */
const AZURITE_ACCOUNT = "devstoreaccount1";
const AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface AzureEmulator {
    connectionString: string;
    container: string;
    env(): Record<string, string>;
    stop(): Promise<void>;
}

export async function startAzurite(container = "backups"): Promise<AzureEmulator> {
    const location = mkdtempSync(path.join(os.tmpdir(), "kx-azurite-"));
    const port = await freePort();
    const bin = require.resolve("azurite/dist/src/blob/main.js");
    const child: ChildProcess = spawn(process.execPath, [bin, "--blobHost", "127.0.0.1", "--blobPort", String(port), "--location", location,
        "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose"], { stdio: "ignore" });
    await waitForPort(port);
    const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { BlobServiceClient } = require("@azure/storage-blob") as typeof import("@azure/storage-blob");
    await BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container).createIfNotExists();
    return {
        connectionString,
        container,
        env: () => ({ BACKUP_AZURE_CONTAINER: container, AZURE_STORAGE_CONNECTION_STRING: connectionString }),
        async stop() {
            child.kill("SIGTERM");
            await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
            rmSync(location, { recursive: true, force: true });
        },
    };
}
