/**
 * Throwaway services on 127.0.0.1 for tests, the drill and the benchmark: a PostgreSQL cluster
 * (run as the `postgres` user when we are root: initdb refuses root), the s3rver S3 emulator and
 * the azurite Azure Blob emulator. Everything lives in a temp directory and is removed on stop.
 */
import { ChildProcess, spawn } from "child_process";
import { mkdtempSync, rmSync } from "fs";
import { freePort, missingPostgres as missingPg, PgCluster, startPostgres as startPg } from "../src/ephemeral";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export const PG_BIN = process.env.KX_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";

export { freePort };
export type { PgCluster };

export function missingPostgres(): string | undefined {
    return missingPg(PG_BIN);
}

export function startPostgres(opts: { password?: string } = {}): Promise<PgCluster> {
    return startPg({ binDir: PG_BIN, ...opts });
}

/** The VERIFY_PG* settings that make `pg` verify's scratch server (the pod's sidecar, here a throwaway cluster). */
export function verifyServerEnv(pg: PgCluster): Record<string, string> {
    return { VERIFY_PGHOST: pg.host, VERIFY_PGPORT: String(pg.port), VERIFY_PGUSER: pg.user, VERIFY_PGPASSWORD: pg.password };
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

export interface S3Emulator {
    endpoint: string;
    bucket: string;
    /** The process serving it, when it has its own (`ownProcess`). */
    pid?: number;
    env(): Record<string, string>;
    stop(): Promise<void>;
}

export interface EmulatorOptions {
    /**
     * Run at this nice level (0 to 19) in a process of its own: the benchmark runs the stores,
     * which stand in for remote services, at the lowest priority so they take only CPU the job
     * leaves idle.
     */
    nice?: number;
}

/** The command line for a node program at a nice level (`nice` from coreutils). */
function niced(nice: number | undefined, args: string[]): [string, string[]] {
    return nice ? ["nice", ["-n", String(nice), process.execPath, ...args]] : [process.execPath, args];
}

function stopChild(child: ChildProcess): Promise<void> {
    child.kill("SIGTERM");
    return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())));
}

/** s3rver: path-style addressing, fixed S3RVER credentials, no versioning. In this process unless `nice` is given. */
export async function startS3(bucket = "backups", o: EmulatorOptions = {}): Promise<S3Emulator> {
    if (o.nice !== undefined) {
        return startS3Process(bucket, o.nice);
    }
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
        env: () => s3rverEnv(bucket, endpoint),
        async stop() {
            await server.close();
            rmSync(directory, { recursive: true, force: true });
        },
    };
}

/** The job's settings for an s3rver bucket: path-style, its fixed credentials. */
function s3rverEnv(bucket: string, endpoint: string): Record<string, string> {
    return {
        BACKUP_S3_BUCKET: bucket,
        BACKUP_S3_ENDPOINT: endpoint,
        BACKUP_S3_FORCE_PATH_STYLE: "true",
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
    };
}

async function startS3Process(bucket: string, nice: number): Promise<S3Emulator> {
    const directory = mkdtempSync(path.join(os.tmpdir(), "kx-s3-"));
    const port = await freePort();
    const options = JSON.stringify({ port, address: "127.0.0.1", silent: true, directory, configureBuckets: [{ name: bucket }] });
    const script = `new (require(${JSON.stringify(require.resolve("s3rver"))}))(${options}).run().catch((e) => { console.error(e); process.exit(1); });`;
    const [cmd, args] = niced(nice, ["-e", script]);
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
    await waitForPort(port);
    const endpoint = `http://127.0.0.1:${port}`;
    return {
        endpoint,
        bucket,
        pid: child.pid,
        env: () => s3rverEnv(bucket, endpoint),
        async stop() {
            await stopChild(child);
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
    pid?: number;
    env(): Record<string, string>;
    stop(): Promise<void>;
}

export async function startAzurite(container = "backups", o: EmulatorOptions = {}): Promise<AzureEmulator> {
    const location = mkdtempSync(path.join(os.tmpdir(), "kx-azurite-"));
    const port = await freePort();
    const bin = require.resolve("azurite/dist/src/blob/main.js");
    const [cmd, args] = niced(o.nice, [bin, "--blobHost", "127.0.0.1", "--blobPort", String(port), "--location", location,
        "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose"]);
    const child: ChildProcess = spawn(cmd, args, { stdio: "ignore" });
    await waitForPort(port);
    const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { BlobServiceClient } = require("@azure/storage-blob") as typeof import("@azure/storage-blob");
    await BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container).createIfNotExists();
    return {
        connectionString,
        container,
        pid: child.pid,
        env: () => ({ BACKUP_AZURE_CONTAINER: container, AZURE_STORAGE_CONNECTION_STRING: connectionString }),
        async stop() {
            await stopChild(child);
            rmSync(location, { recursive: true, force: true });
        },
    };
}
