/**
 * kx-backup backup/list/prune end to end: the bundled CLI against a real PostgreSQL 15, s3rver
 * and azurite on loopback. Every copy is restored with pg_restore and compared table by table.
 */
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient } from "@azure/storage-blob";
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AzureEmulator, freePort, PG_BIN, PgCluster, S3Emulator, startAzurite, startPostgres, startS3 } from "../../jobs/dev/services";
import { CliResult, countsOf, logLines, runCli } from "../helpers/cli";
import { TABLE_DIGESTS, TYPES_SCHEMA } from "../helpers/fixtures";
import { manifestFor } from "../helpers/manifests";

let pg: PgCluster;
let s3: S3Emulator;
let azure: AzureEmulator;
let work: string;
const DB = "kx_e2e";

beforeAll(async () => {
    [pg, s3, azure] = await Promise.all([startPostgres(), startS3(), startAzurite()]);
    work = mkdtempSync(path.join(os.tmpdir(), "kx-e2e-"));
    pg.psql("postgres", `CREATE DATABASE ${DB}`);
    pg.psql(DB, TYPES_SCHEMA);
}, 120_000);

afterAll(async () => {
    pg?.remove();
    await Promise.all([s3?.stop(), azure?.stop()]);
    rmSync(work, { recursive: true, force: true });
});

function localDir(name: string): string {
    const dir = path.join(work, name);
    mkdirSync(dir, { recursive: true });
    return dir;
}

/** Env for a run to all three targets, each under its own prefix so runs do not see each other. */
function envAll(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
        ...pg.env(DB),
        BACKUP_LOCAL_DIR: localDir(prefix),
        ...s3.env(),
        BACKUP_S3_PREFIX: prefix,
        ...azure.env(),
        BACKUP_AZURE_PREFIX: prefix,
        ...extra,
    };
}

const s3Client = () => new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });

async function s3Keys(prefix: string): Promise<string[]> {
    const r = await s3Client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/` }));
    return (r.Contents ?? []).map((o) => o.Key!);
}

async function azureKeys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const container = BlobServiceClient.fromConnectionString(azure.connectionString).getContainerClient(azure.container);
    for await (const b of container.listBlobsFlat({ prefix: `${prefix}/` })) {
        out.push(b.name);
    }
    return out;
}

function localFiles(prefix: string): string[] {
    const root = path.join(work, prefix);
    const walk = (d: string): string[] =>
        readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.relative(root, path.join(d, e.name))]));
    return walk(root);
}

async function everything(prefix: string): Promise<string[]> {
    return [...localFiles(prefix), ...(await s3Keys(prefix)), ...(await azureKeys(prefix))];
}

function tableDigests(database: string): Record<string, string> {
    const tables = pg.psql(database, TABLE_DIGESTS).split("\n").filter(Boolean);
    return Object.fromEntries(tables.map((t) => [t, pg.psql(database, `SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM ${t} x`)]));
}

function restoreInto(file: string, database: string, extraArgs: string[] = []): void {
    pg.psql("postgres", `DROP DATABASE IF EXISTS ${database}`);
    pg.psql("postgres", `CREATE DATABASE ${database}`);
    execFileSync(path.join(PG_BIN, "pg_restore"), ["--no-password", "--exit-on-error", "-d", database, ...extraArgs, file], { env: { ...process.env, ...pg.env(database) }, stdio: ["ignore", "pipe", "pipe"] });
}

function expectNoSecrets(r: CliResult): void {
    expect(r.stdout + r.stderr).not.toContain(pg.password);
}

describe("backup to local, S3 and Azure at once", () => {
    let result: CliResult;
    let manifest: any;
    const prefix = "full";

    beforeAll(async () => {
        result = await runCli(["backup", "--no-prune"], envAll(prefix));
    }, 120_000);

    it("succeeds with a one-line summary naming size, time, throughput and targets", () => {
        expect(result.stderr).toBe(result.stderr); // keep output visible on failure below
        expect(result.code, result.stderr).toBe(0);
        const done = logLines(result.stderr).find((l) => l.event === "backup.done");
        expect(done?.msg).toMatch(/^backup kx_e2e ok: [\d.]+ MiB in [\d.]+s \([\d.]+ MiB\/s\) to local, s3, azure$/);
        // Where the time went, phase by phase, in order.
        expect(Object.keys(done?.phasesMs ?? {})).toEqual(["prepare", "dump", "upload", "globals", "manifest"]);
        expect(Object.values(done!.phasesMs as Record<string, number>).every((ms) => Number.isInteger(ms) && ms >= 0)).toBe(true);
        expectNoSecrets(result);
    });

    it("names the dump as the runbook does, with a manifest and the globals beside it on every target", async () => {
        const files = localFiles(prefix);
        expect(files).toHaveLength(3);
        const dump = files.find((f) => f.endsWith(".dump"))!;
        expect(dump).toMatch(/^kx_e2e\/kx_e2e-\d{8}-\d{6}-[0-9a-f]{6}\.dump$/);
        expect(files.sort()).toEqual([dump, `${dump}.globals.sql`, `${dump}.manifest.json`]);
        expect((await s3Keys(prefix)).sort()).toEqual([`full/${dump}`, `full/${dump}.globals.sql`, `full/${dump}.manifest.json`]);
        expect((await azureKeys(prefix)).sort()).toEqual([`full/${dump}`, `full/${dump}.globals.sql`, `full/${dump}.manifest.json`]);
        manifest = JSON.parse(readFileSync(path.join(work, prefix, `${dump}.manifest.json`), "utf8"));
    });

    it("records size, sha256, versions and the snapshot's exact row counts in the manifest", () => {
        const dump = readFileSync(path.join(work, prefix, manifest.key));
        expect(manifest.size).toBe(dump.length);
        expect(manifest.sha256).toBe(createHash("sha256").update(dump).digest("hex"));
        expect(manifest.format).toBe("custom");
        expect(manifest.server.version).toMatch(/^15\./);
        expect(manifest.pgDump.version).toMatch(/^15\./);
        expect(manifest.targets).toEqual(["local", "s3", "azure"]);
        expect(countsOf(manifest)).toEqual({
            "ledger.entries": 5000,
            "public.accounts": 3001,
            "public.blobs": 190,
            "public.empty_table": 0,
            "public.orders": 20000,
        });
    });

    it("stores identical bytes on every target, and each copy restores to the same data", async () => {
        const source = tableDigests(DB);
        const copies: Record<string, Buffer> = {
            local: readFileSync(path.join(work, prefix, manifest.key)),
        };
        const s3Obj = await s3Client().send(new (await import("@aws-sdk/client-s3")).GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${manifest.key}` }));
        copies.s3 = Buffer.from(await s3Obj.Body!.transformToByteArray());
        const blob = BlobServiceClient.fromConnectionString(azure.connectionString).getContainerClient(azure.container).getBlobClient(`${prefix}/${manifest.key}`);
        copies.azure = await blob.downloadToBuffer();
        for (const [target, bytes] of Object.entries(copies)) {
            expect(createHash("sha256").update(bytes).digest("hex"), target).toBe(manifest.sha256);
            const file = path.join(work, `restore-${target}.dump`);
            writeFileSync(file, bytes);
            const into = `restored_${target}`;
            restoreInto(file, into);
            expect(tableDigests(into), target).toEqual(source);
            expect(pg.psql(into, "SELECT count(*) FROM rich_accounts")).toBe(pg.psql(DB, "SELECT count(*) FROM rich_accounts"));
            expect(pg.psql(into, "SELECT account_total()")).toBe(pg.psql(DB, "SELECT account_total()"));
            expect(pg.psql(into, "SELECT last_value FROM invoice_seq")).toBe("4242");
            expect(pg.psql(into, "SELECT display_name FROM accounts WHERE id = 1")).toBe("山田太郎");
        }
    });

    it("lists the backup per database and target as complete, newest first (--json and text)", async () => {
        const json = await runCli(["list", "--json"], envAll(prefix));
        expect(json.code, json.stderr).toBe(0);
        const rows = JSON.parse(json.stdout);
        expect(rows.map((r: any) => [r.database, r.target, r.status])).toEqual([
            ["kx_e2e", "azure", "complete"],
            ["kx_e2e", "local", "complete"],
            ["kx_e2e", "s3", "complete"],
        ]);
        expect(rows[0].size).toBe(manifest.size);
        const text = await runCli(["list"], envAll(prefix));
        expect(text.stdout).toMatch(/DATABASE\s+TARGET\s+NAME\s+SIZE\s+AGE\s+STATUS/);
        expect(text.stdout).toMatch(/kx_e2e\s+s3\s+kx_e2e-\d{8}-\d{6}-[0-9a-f]{6}\.dump\s+[\d.]+ MiB\s+[\d.]+h\s+complete/);
    });
});

describe("the runbook's variants", () => {
    it("directory format with parallel jobs: archived, hashed, manifested, restorable", async () => {
        const r = await runCli(["backup", "--format", "directory", "--jobs", "2", "--no-prune"], envAll("dir"));
        expect(r.code, r.stderr).toBe(0);
        const dump = localFiles("dir").find((f) => f.endsWith(".dump.tar"))!;
        const manifest = JSON.parse(readFileSync(path.join(work, "dir", `${dump}.manifest.json`), "utf8"));
        expect(manifest).toMatchObject({ format: "directory", container: "tar", options: { jobs: 2 } });
        const bytes = readFileSync(path.join(work, "dir", dump));
        expect(createHash("sha256").update(bytes).digest("hex")).toBe(manifest.sha256);
        const extracted = mkdtempSync(path.join(work, "x-"));
        execFileSync("tar", ["-xf", path.join(work, "dir", dump), "-C", extracted]);
        restoreInto(extracted, "restored_dir", ["-j", "2"]);
        expect(tableDigests("restored_dir")).toEqual(tableDigests(DB));
    });

    it("schema only: no data, no counts", async () => {
        const r = await runCli(["backup", "--schema-only", "--no-prune"], { ...pg.env(DB), BACKUP_LOCAL_DIR: localDir("schema") });
        expect(r.code, r.stderr).toBe(0);
        const m = JSON.parse(readFileSync(path.join(work, "schema", localFiles("schema").find((f) => f.endsWith(".manifest.json"))!), "utf8"));
        expect(m.options.schemaOnly).toBe(true);
        expect(countsOf(m)).toEqual({});
        restoreInto(path.join(work, "schema", m.key), "restored_schema");
        expect(pg.psql("restored_schema", "SELECT count(*) FROM accounts")).toBe("0");
    });

    it("selected tables: a name that matches nothing fails the backup instead of leaving the table out", async () => {
        const r = await runCli(["backup", "--table", "orders", "--table", "\"Orders\"", "--no-prune"], { ...pg.env(DB), BACKUP_LOCAL_DIR: localDir("nomatch") });
        expect(r.code).toBe(1);
        expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(/no matching tables were found for pattern "\\"Orders\\""|no matching tables/);
        expect(localFiles("nomatch").filter((f) => f.endsWith(".manifest.json"))).toEqual([]);
    });

    it("selected tables: only those, counted", async () => {
        const r = await runCli(["backup", "--table", "orders", "--table", "ledger.*", "--data-only", "--no-prune"], { ...pg.env(DB), BACKUP_LOCAL_DIR: localDir("tables") });
        expect(r.code, r.stderr).toBe(0);
        const m = JSON.parse(readFileSync(path.join(work, "tables", localFiles("tables").find((f) => f.endsWith(".manifest.json"))!), "utf8"));
        expect(countsOf(m)).toEqual({ "ledger.entries": 5000, "public.orders": 20000 });
        expect(m.options).toMatchObject({ dataOnly: true, tables: ["orders", "ledger.*"] });
        const toc = execFileSync(path.join(PG_BIN, "pg_restore"), ["-l", path.join(work, "tables", m.key)]).toString();
        expect(toc).toMatch(/TABLE DATA public orders/);
        expect(toc).not.toMatch(/TABLE DATA public accounts/);
    });
});

describe("failures: one clear line, non-zero exit, no manifest anywhere, nothing partial left", () => {
    it("wrong password: says so, and prints no password", async () => {
        const r = await runCli(["backup"], envAll("badpw", { PGPASSWORD: "definitely-wrong-pw" }));
        expect(r.code).toBe(1);
        const err = logLines(r.stderr).find((l) => l.level === "error");
        expect(err?.msg).toMatch(/password authentication failed for PostgreSQL at 127\.0\.0\.1:\d+ as postgres: check PGPASSWORD/);
        expect(r.stdout + r.stderr).not.toContain("definitely-wrong-pw");
        expectNoSecrets(r);
        expect(await everything("badpw")).toEqual([]);
    });

    it("server down: says where and what to check", async () => {
        const closed = await freePort();
        const r = await runCli(["backup"], envAll("down", { PGPORT: String(closed) }));
        expect(r.code).toBe(1);
        expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(/cannot connect to PostgreSQL at 127\.0\.0\.1:\d+ \(connection refused\): is the server up/);
        expect(await everything("down")).toEqual([]);
    });

    it("server stopped during the dump: pg_dump's failure is reported and every partial copy removed", async () => {
        const victim = await startPostgres();
        try {
            victim.psql("postgres", "CREATE DATABASE big");
            victim.psql("big", "CREATE TABLE t AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS a, random() AS r FROM generate_series(1, 3000000) g");
            const env = { ...envAll("stopped"), ...victim.env("big") };
            const run = runCli(["backup"], env);
            await new Promise((resolve) => setTimeout(resolve, 1500));
            victim.stop("immediate");
            const r = await run;
            expect(r.code).toBe(1);
            const msg = logLines(r.stderr).find((l) => l.level === "error")?.msg;
            expect(msg).toMatch(/pg_dump of big failed: .*|backup of big failed: /);
            expect(r.stdout + r.stderr).not.toContain(victim.password);
            expect(await everything("stopped")).toEqual([]);
        } finally {
            victim.remove();
        }
    }, 120_000);

    it("directory format: the server stopped mid-dump: pg_dump's error, no copy anywhere, its work directory removed, nothing left running", async () => {
        const victim = await startPostgres();
        const scratch = mkdtempSync(path.join(work, "dirfail-work-"));
        try {
            victim.psql("postgres", "CREATE DATABASE big");
            // A small table a worker finishes early, and a big one still being dumped when the server stops.
            victim.psql("big", "CREATE TABLE small AS SELECT g AS id FROM generate_series(1, 1000) g;" +
                "CREATE TABLE t AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS a, random() AS r FROM generate_series(1, 3000000) g");
            const env = { ...envAll("dirfail"), ...victim.env("big"), BACKUP_WORK_DIR: scratch };
            const run = runCli(["backup", "--format", "directory", "--jobs", "2", "--no-prune"], env);
            await new Promise((resolve) => setTimeout(resolve, 1500));
            victim.stop("immediate");
            const r = await run;
            expect(r.code).toBe(1);
            expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(/pg_dump of big failed: /);
            expect(await everything("dirfail")).toEqual([]);
            expect(readdirSync(scratch)).toEqual([]);
            expect(execFileSync("ps", ["-eo", "args"]).toString()).not.toContain(scratch);
        } finally {
            victim.remove();
        }
    }, 120_000);

    it("an invalid setting: exit 2, one message per problem, nothing touched", async () => {
        const r = await runCli(["backup"], envAll("invalid", { BACKUP_RETENTION_DAYS: "0", BACKUP_FORMAT: "zip" }));
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split("\n")).toEqual([
            'kx-backup backup: BACKUP_RETENTION_DAYS="0" is not allowed: expected a whole number from 1 up',
            'kx-backup backup: BACKUP_FORMAT="zip" is not allowed: expected one of custom, directory, plain',
        ]);
        expect(await everything("invalid")).toEqual([]);
    });

    it("no database named: exit 2", async () => {
        const env = envAll("nodb");
        delete (env as Record<string, string | undefined>).PGDATABASE;
        const r = await runCli(["backup"], env);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/no database to back up: set PGDATABASE or --database/);
    });

    it("an unknown flag: exit 2 with usage", async () => {
        const r = await runCli(["backup", "--formt", "custom"], envAll("flag"));
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/Unknown option '--formt'[\s\S]*Usage: kx-backup backup/);
    });

    it("Azure unreachable: fails after retries, and the other targets keep nothing", async () => {
        const closed = await freePort();
        const r = await runCli(["backup"], envAll("noazure", {
            AZURE_STORAGE_CONNECTION_STRING: azure.connectionString.replace(/BlobEndpoint=http:\/\/127\.0\.0\.1:\d+/, `BlobEndpoint=http://127.0.0.1:${closed}`),
        }));
        expect(r.code).toBe(1);
        expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(/backup of kx_e2e failed: .*(ECONNREFUSED|connect)/i);
        expect(await everything("noazure")).toEqual([]);
    }, 120_000);
});

/** An HTTP proxy in front of s3rver that fails chosen part uploads with 500. */
async function faultyS3(shouldFail: (n: number) => boolean): Promise<{ endpoint: string; failed: () => number; close: () => Promise<void> }> {
    let partRequests = 0;
    let failures = 0;
    const target = new URL(s3.endpoint);
    const server = http.createServer((req, res) => {
        const isPart = req.method === "PUT" && /[?&]partNumber=/.test(req.url ?? "");
        if (isPart && shouldFail(++partRequests)) {
            failures++;
            req.resume();
            req.on("end", () => {
                res.writeHead(500, { "content-type": "application/xml" });
                res.end("<Error><Code>InternalError</Code><Message>injected</Message></Error>");
            });
            return;
        }
        const upstream = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
        });
        upstream.on("error", () => res.destroy());
        req.pipe(upstream);
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    return {
        endpoint: `http://127.0.0.1:${port}`,
        failed: () => failures,
        close: () => new Promise((r) => server.close(() => r())),
    };
}

describe("S3 part failures", () => {
    it("retries failed part uploads and still stores a correct backup", async () => {
        const proxy = await faultyS3((n) => n % 2 === 1);
        try {
            const r = await runCli(["backup", "--no-prune"], envAll("flaky", { BACKUP_S3_ENDPOINT: proxy.endpoint }));
            expect(r.code, r.stderr).toBe(0);
            expect(proxy.failed()).toBeGreaterThan(0);
            const keys = await s3Keys("flaky");
            const key = keys.find((k) => k.endsWith(".dump"))!;
            const manifest = JSON.parse(readFileSync(path.join(work, "flaky", key.slice("flaky/".length) + ".manifest.json"), "utf8"));
            const obj = await s3Client().send(new (await import("@aws-sdk/client-s3")).GetObjectCommand({ Bucket: s3.bucket, Key: key }));
            const bytes = Buffer.from(await obj.Body!.transformToByteArray());
            expect(createHash("sha256").update(bytes).digest("hex")).toBe(manifest.sha256);
        } finally {
            await proxy.close();
        }
    }, 120_000);

    it("gives up cleanly when parts keep failing: upload aborted, no manifest, no partial copy anywhere", async () => {
        const proxy = await faultyS3(() => true);
        try {
            const r = await runCli(["backup"], envAll("s3down", { BACKUP_S3_ENDPOINT: proxy.endpoint }));
            expect(r.code).toBe(1);
            expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(/backup of kx_e2e failed: /);
            expect(await everything("s3down")).toEqual([]);
        } finally {
            await proxy.close();
        }
    }, 120_000);
});

describe("prune", () => {
    const prefix = "prune";
    const day = 86_400_000;
    const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);

    /**
     * Lays out backups of `kong` taken `ages` days ago: complete (with a manifest), kx-backup's
     * own unfinished upload (with its in-progress marker), or foreign (a runbook-era dump).
     */
    function seed(dir: string, ages: [number, boolean | "foreign"][]): string[] {
        const names: string[] = [];
        mkdirSync(path.join(dir, "kong"), { recursive: true });
        for (const [age, complete] of ages) {
            const name = `kong/kong-${stamp(new Date(Date.now() - age * day))}${complete === "foreign" ? "" : `-${Math.random().toString(16).slice(2, 8)}`}.dump`;
            writeFileSync(path.join(dir, name), "dump");
            if (complete === true) {
                writeFileSync(path.join(dir, `${name}.manifest.json`), JSON.stringify(manifestFor(name, "dump")));
            } else if (complete === false) {
                writeFileSync(path.join(dir, `${name}.inprogress.json`), "{}");
            }
            names.push(name);
        }
        return names;
    }

    it("--dry-run prints the plan and deletes nothing; then prune deletes what it planned", async () => {
        const dir = localDir(prefix);
        const [fresh, , old1, old2, junk, foreign] = seed(dir, [[0.5, true], [3, true], [10, true], [12, true], [2, false], [40, "foreign"]]);
        const env = { BACKUP_LOCAL_DIR: dir, BACKUP_RETENTION_DAYS: "7", BACKUP_KEEP_MIN: "2" };
        const before = localFiles(prefix).sort();
        const dry = await runCli(["prune", "--dry-run"], env);
        expect(dry.code, dry.stderr).toBe(0);
        const planned = logLines(dry.stderr).filter((l) => l.event === "prune.plan").map((l) => l.key).sort();
        expect(planned).toEqual([old1, old2, junk].sort());
        expect(localFiles(prefix).sort()).toEqual(before);

        const real = await runCli(["prune"], env);
        expect(real.code, real.stderr).toBe(0);
        expect(localFiles(prefix)).toHaveLength(5);
        expect(localFiles(prefix)).toEqual(expect.arrayContaining([fresh, `${fresh}.manifest.json`, foreign]));
        expect(localFiles(prefix)).not.toContain(old1);
        expect(localFiles(prefix)).not.toContain(junk);
        expect(localFiles(prefix)).not.toContain(`${junk}.inprogress.json`);
        expect(logLines(real.stderr).find((l) => l.event === "prune.note")?.msg).toMatch(/was not written by kx-backup: kept/);
    });

    it("stale guard: when even the newest complete backup is past retention, deletes nothing and exits 1", async () => {
        const dir = localDir("stale");
        seed(dir, [[20, true], [25, true], [30, true]]);
        const before = localFiles("stale").sort();
        const r = await runCli(["prune"], { BACKUP_LOCAL_DIR: dir, BACKUP_RETENTION_DAYS: "7", BACKUP_KEEP_MIN: "1" });
        expect(r.code).toBe(1);
        expect(logLines(r.stderr).find((l) => l.event === "prune.stale")?.msg).toMatch(/newest good full backup kong\/kong-.*\.dump is older than 7 days: backups are failing; nothing deleted/);
        expect(localFiles("stale").sort()).toEqual(before);
    });

    it("runs after a successful backup and keeps the newest BACKUP_KEEP_MIN", async () => {
        const dir = localDir("after");
        const [old] = seed(dir, [[40, true]]);
        const r = await runCli(["backup", "--database", "kx_e2e"], { ...pg.env(DB), BACKUP_LOCAL_DIR: dir, BACKUP_RETENTION_DAYS: "7", BACKUP_KEEP_MIN: "1" });
        expect(r.code, r.stderr).toBe(0);
        // kong is pruned only when asked for: the CronJob prunes its own database.
        expect(localFiles("after")).toContain(old);
        expect(logLines(r.stderr).some((l) => l.event === "prune.summary" && l.database === "kx_e2e")).toBe(true);
    });
});
