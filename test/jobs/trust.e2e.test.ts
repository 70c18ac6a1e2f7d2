/**
 * "Never delete or restore the wrong backup", end to end with the bundled CLI against a real
 * PostgreSQL, s3rver and azurite: foreign dumps survive, adopt takes them over, partial backups
 * and safety dumps are never `latest`, two runs in one frozen second both land, a failing target
 * reports its own cause, and SIGTERM mid-upload leaves nothing behind.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient } from "@azure/storage-blob";
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AzureEmulator, PG_BIN, PgCluster, S3Emulator, startAzurite, startPostgres, startS3 } from "../../jobs/dev/services";
import { logLines, runCli } from "../helpers/cli";
import { gateProxy, webhookSink } from "../helpers/proxy";

let pg: PgCluster;
let s3: S3Emulator;
let azure: AzureEmulator;
let work: string;
const DB = "kx_trust";
const BIG = "kx_trust_big";

beforeAll(async () => {
    [pg, s3, azure] = await Promise.all([startPostgres(), startS3(), startAzurite()]);
    work = mkdtempSync(path.join(os.tmpdir(), "kx-trust-"));
    chmodSync(work, 0o755);
    pg.psql("postgres", `CREATE DATABASE ${DB}`);
    pg.psql(DB, `CREATE TABLE wallets (id int PRIMARY KEY, balance numeric); INSERT INTO wallets SELECT g, g FROM generate_series(1, 500) g;
                 CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'o' || g FROM generate_series(1, 300) g;`);
    // Incompressible rows, so a dump takes long enough to be stopped mid-way.
    pg.psql("postgres", `CREATE DATABASE ${BIG}`);
    pg.psql(BIG, `CREATE TABLE a (id int, data bytea); CREATE TABLE b (id int, data bytea);
                  INSERT INTO a SELECT r, (SELECT decode(string_agg(md5(random()::text || r || s), ''), 'hex') FROM generate_series(1, 4096) s) FROM generate_series(1, 600) r;
                  INSERT INTO b SELECT r, (SELECT decode(string_agg(md5(random()::text || r || s), ''), 'hex') FROM generate_series(1, 4096) s) FROM generate_series(1, 600) r;`);
}, 240_000);

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

function envAll(prefix: string, extra: Record<string, string> = {}, database = DB): Record<string, string> {
    return {
        ...pg.env(database),
        BACKUP_LOCAL_DIR: localDir(prefix),
        ...s3.env(),
        BACKUP_S3_PREFIX: prefix,
        ...azure.env(),
        BACKUP_AZURE_PREFIX: prefix,
        ...extra,
    };
}

const s3Client = () => new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
const container = () => BlobServiceClient.fromConnectionString(azure.connectionString).getContainerClient(azure.container);

async function s3Keys(prefix: string): Promise<string[]> {
    const r = await s3Client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/` }));
    return (r.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)).sort();
}

async function azureKeys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const b of container().listBlobsFlat({ prefix: `${prefix}/` })) {
        out.push(b.name.slice(prefix.length + 1));
    }
    return out.sort();
}

function localFiles(prefix: string): string[] {
    const root = path.join(work, prefix);
    if (!existsSync(root)) {
        return [];
    }
    const walk = (d: string): string[] =>
        readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.relative(root, path.join(d, e.name))]));
    return walk(root).sort();
}

/** A runbook-era dump: pg_dump -Fc by hand, as §3.1 makes them. */
function runbookDump(database: string): Buffer {
    const file = path.join(work, `${database}-by-hand.dump`);
    execFileSync(path.join(PG_BIN, "pg_dump"), ["-Fc", "-f", file, database], { env: { ...process.env, ...pg.env(database) } });
    return readFileSync(file);
}

/** Puts the same object on all three targets, as the runbook's `aws s3 cp` / `az storage blob upload` do. */
async function placeEverywhere(prefix: string, key: string, body: Buffer): Promise<void> {
    const file = path.join(work, prefix, key);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, body);
    await s3Client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${key}`, Body: body }));
    await container().getBlockBlobClient(`${prefix}/${key}`).upload(body, body.length);
}

function stamp(daysAgo: number): string {
    return new Date(Date.now() - daysAgo * 86_400_000).toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

const errorLine = (stderr: string) => logLines(stderr).find((l) => l.level === "error")?.msg as string | undefined;

describe("dumps kx-backup did not write", () => {
    const prefix = "foreign";
    const recent = `${DB}/${DB}-${stamp(2)}.dump`;
    const old = `${DB}/${DB}-${stamp(40)}.dump`;
    const garbage = `${DB}/${DB}-${stamp(41)}.dump`;
    let dump: Buffer;

    beforeAll(async () => {
        dump = runbookDump(DB);
        await placeEverywhere(prefix, recent, dump);
        await placeEverywhere(prefix, old, dump);
        await placeEverywhere(prefix, garbage, Buffer.from("not a dump at all"));
    }, 60_000);

    it("survive a scheduled backup and its prune on all three targets, listed as foreign", async () => {
        const r = await runCli(["backup"], envAll(prefix, { BACKUP_RETENTION_DAYS: "1", BACKUP_KEEP_MIN: "1", BACKUP_TRIGGER: "scheduled" }));
        expect(r.code, r.stderr).toBe(0);
        for (const keys of [localFiles(prefix), await s3Keys(prefix), await azureKeys(prefix)]) {
            expect(keys).toEqual(expect.arrayContaining([recent, old, garbage]));
        }
        expect(logLines(r.stderr).filter((l) => l.event === "prune.note").map((l) => l.msg).join("\n")).toMatch(/was not written by kx-backup: kept/);
        const list = await runCli(["list", "--json"], envAll(prefix));
        const rows = JSON.parse(list.stdout) as { target: string; name: string; status: string; purpose?: string }[];
        for (const target of ["local", "s3", "azure"]) {
            expect(rows.filter((x) => x.target === target && x.status === "foreign").map((x) => x.name).sort()).toEqual([garbage, old, recent].map((k) => k.slice(DB.length + 1)).sort());
            expect(rows.find((x) => x.target === target && x.status === "complete")?.purpose).toBe("scheduled");
        }
        const text = await runCli(["list"], envAll(prefix));
        expect(text.stdout).toMatch(/foreign\s+not written by kx-backup: kx-backup adopt/);
    }, 120_000);

    it("adopt refuses what pg_restore cannot read, and writes nothing for it", async () => {
        const r = await runCli(["adopt", "--backup", path.basename(garbage), "--from", "s3"], envAll(prefix));
        expect(r.code).toBe(1);
        expect(errorLine(r.stderr)).toMatch(/kx_trust-\d{8}-\d{6}\.dump on s3: not a pg_dump custom-format archive/);
        expect(await s3Keys(prefix)).not.toContain(`${garbage}.manifest.json`);
    });

    it("adopt checks a foreign dump and writes an adopted manifest; then it restores and joins retention", async () => {
        const r = await runCli(["adopt", "--backup", path.basename(recent)], envAll(prefix));
        expect(r.code, r.stderr).toBe(0);
        const sha = createHash("sha256").update(dump).digest("hex");
        const manifests = [
            JSON.parse(readFileSync(path.join(work, prefix, `${recent}.manifest.json`), "utf8")),
            JSON.parse(Buffer.from(await (await s3Client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${recent}.manifest.json` }))).Body!.transformToByteArray()).toString()),
        ];
        for (const m of manifests) {
            expect(m).toMatchObject({ purpose: "adopted", scope: "full", sha256: sha, size: dump.length, format: "custom", counts: { method: "none" }, server: { versionNum: expect.any(Number) } });
            expect(m.toc.map((e: { desc: string; name: string }) => `${e.desc} ${e.name}`)).toEqual(expect.arrayContaining(["TABLE wallets", "TABLE DATA orders"]));
        }
        // Adopting twice is refused: it has a manifest now.
        const again = await runCli(["adopt", "--backup", path.basename(recent), "--from", "local"], envAll(prefix));
        expect(again.code).toBe(1);
        expect(errorLine(again.stderr)).toMatch(/already a kx-backup backup/);
        // It restores like any backup.
        const restored = await runCli(["restore", "--into", "kx_adopted", "--backup", path.basename(recent), "--from", "azure"], envAll(prefix));
        expect(restored.code, restored.stderr).toBe(0);
        expect(pg.psql("kx_adopted", "SELECT count(*) FROM wallets")).toBe("500");
        // Adopting every foreign dump takes the old one too (the garbage one fails, and says so).
        const all = await runCli(["adopt", "--from", "local"], envAll(prefix));
        expect(all.code).toBe(1);
        expect(localFiles(prefix)).toContain(`${old}.manifest.json`);
        // The old adopted one is now under retention: pruned past 30 days; the garbage stays.
        const prune = await runCli(["prune", "--local-dir", path.join(work, prefix)], { BACKUP_LOCAL_DIR: path.join(work, prefix), BACKUP_RETENTION_DAYS: "30", BACKUP_KEEP_MIN: "1" });
        expect(prune.code, prune.stderr).toBe(0);
        expect(localFiles(prefix)).not.toContain(old);
        expect(localFiles(prefix)).toEqual(expect.arrayContaining([garbage, recent]));
    }, 120_000);
});

describe("what latest means", () => {
    const prefix = "scopes";

    it("a schema-only backup newer than the full one is never latest for verify or restore", async () => {
        const full = await runCli(["backup", "--no-prune"], envAll(prefix));
        expect(full.code, full.stderr).toBe(0);
        const fullKey = logLines(full.stderr).find((l) => l.event === "backup.done")?.key;
        // Names carry the second: two runs in one second have no defined order, so the next one starts in the next second.
        await new Promise((resolve) => setTimeout(resolve, 1050 - (Date.now() % 1000)));
        const schema = await runCli(["backup", "--schema-only", "--no-prune"], envAll(prefix));
        expect(schema.code, schema.stderr).toBe(0);
        const verify = await runCli(["verify", "--json", "--from", "s3"], envAll(prefix));
        expect(verify.code, verify.stderr).toBe(0);
        expect(JSON.parse(verify.stdout).key).toBe(fullKey);
        const plan = await runCli(["restore", "--into", "kx_scopes", "--plan"], envAll(prefix));
        expect(plan.code, plan.stderr).toBe(0);
        expect(plan.stdout).toContain(fullKey);
        const rows = JSON.parse((await runCli(["list", "--json"], envAll(prefix))).stdout) as { target: string; status: string; scope?: string }[];
        expect(rows.filter((r) => r.target === "local").map((r) => [r.status, r.scope])).toEqual([["partial", "schema-only"], ["complete", "full"]]);
        expect(rows.filter((r) => r.target === "s3").map((r) => [r.status, r.scope])).toEqual([["partial", "schema-only"], ["verified", "full"]]);
    }, 120_000);

    it("a safety dump is stored apart and never becomes latest, so a retried restore restores the backup", async () => {
        const env = envAll("safety");
        const first = await runCli(["backup", "--no-prune"], env);
        expect(first.code, first.stderr).toBe(0);
        const key = logLines(first.stderr).find((l) => l.event === "backup.done")?.key as string;
        pg.psql("postgres", "DROP DATABASE IF EXISTS kx_safety_target");
        pg.psql("postgres", "CREATE DATABASE kx_safety_target");
        pg.psql("kx_safety_target", "CREATE TABLE damaged (id int); INSERT INTO damaged VALUES (1)");
        const restore = await runCli(["restore", "--into", "kx_safety_target", "--force"], { ...env, PGDATABASE: DB });
        expect(restore.code, restore.stderr).toBe(0);
        const safety = localFiles("safety").filter((f) => f.startsWith("kx_safety_target/safety/") && f.endsWith(".dump"));
        expect(safety).toHaveLength(1);
        // The next restore of that database still means the backup, not the safety dump of the damaged one.
        const retry = await runCli(["restore", "--into", "kx_safety_target", "--force", "--plan", "--database", "kx_safety_target"], env);
        expect(retry.code).not.toBe(0);
        expect(errorLine(retry.stderr)).toMatch(/no complete full backup of kx_safety_target/);
        const plan = await runCli(["restore", "--into", "kx_safety_target", "--force", "--plan"], { ...env, PGDATABASE: DB });
        expect(plan.stdout).toContain(key);
        const rows = JSON.parse((await runCli(["list", "--json", "--database", "kx_safety_target"], env)).stdout) as { status: string }[];
        expect(rows.map((r) => r.status)).toEqual(["safety", "safety", "safety"]);
    }, 120_000);
});

describe("two runs in one second", () => {
    it("get distinct names and both land complete on every target (time frozen with faketime)", async () => {
        const env = { ...envAll("frozen"), DONT_FAKE_MONOTONIC: "1" };
        const wrap = ["faketime", "-f", "2026-11-26 10:00:00"];
        const [a, b] = await Promise.all([runCli(["backup", "--no-prune"], env, { wrap }), runCli(["backup", "--no-prune"], env, { wrap })]);
        expect(a.code, a.stderr).toBe(0);
        expect(b.code, b.stderr).toBe(0);
        const keys = [a, b].map((r) => logLines(r.stderr).find((l) => l.event === "backup.done")?.key as string);
        expect(keys[0]).not.toBe(keys[1]);
        for (const k of keys) {
            expect(k).toMatch(/^kx_trust\/kx_trust-20261126-100000-[0-9a-f]{6}\.dump$/);
        }
        for (const listing of [localFiles("frozen"), await s3Keys("frozen"), await azureKeys("frozen")]) {
            expect(listing.filter((k) => k.endsWith(".manifest.json"))).toHaveLength(2);
        }
        for (const k of keys) {
            const m = JSON.parse(readFileSync(path.join(work, "frozen", `${k}.manifest.json`), "utf8"));
            expect(createHash("sha256").update(readFileSync(path.join(work, "frozen", k))).digest("hex")).toBe(m.sha256);
        }
    }, 120_000);
});

describe("a failing target reports its own cause", () => {
    it("BACKUP_LOCAL_DIR pointing at a file: ENOTDIR, named, notified, nothing left elsewhere", async () => {
        const hook = await webhookSink();
        try {
            const file = path.join(work, "not-a-dir");
            writeFileSync(file, "x");
            const r = await runCli(["backup"], { ...envAll("enotdir"), BACKUP_LOCAL_DIR: file, BACKUP_WEBHOOK_URL: hook.url });
            expect(r.code).toBe(1);
            expect(r.stderr).not.toMatch(/internal error|unexpected failure|no message/);
            expect(errorLine(r.stderr)).toMatch(/local.*ENOTDIR/);
            expect(hook.events.map((e) => [e.command, e.ok])).toEqual([["backup", false]]);
            expect(hook.events[0].message).toMatch(/ENOTDIR/);
            expect([...(await s3Keys("enotdir")), ...(await azureKeys("enotdir"))]).toEqual([]);
        } finally {
            await hook.close();
        }
    }, 60_000);

    it("a directory the job cannot write (a PVC with the wrong owner): EACCES, named", async () => {
        const dir = localDir("eacces");
        chmodSync(dir, 0o755);
        const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
        const r = await runCli(["backup"], { ...envAll("eacces"), BACKUP_LOCAL_DIR: dir, HOME: "/tmp" }, { uid });
        expect(r.code).toBe(1);
        expect(r.stderr).not.toMatch(/internal error|unexpected failure|no message/);
        expect(errorLine(r.stderr)).toMatch(/local.*EACCES/);
        expect([...localFiles("eacces"), ...(await s3Keys("eacces")), ...(await azureKeys("eacces"))]).toEqual([]);
    }, 60_000);
});

describe("SIGTERM mid-upload", () => {
    /** Every process still running whose command line names the database. */
    function leftoverProcesses(database: string): string[] {
        return execFileSync("ps", ["-eo", "pid,args"]).toString().split("\n").filter((l) => l.includes(database) && /pg_dump|tar /.test(l));
    }

    async function stopMidUpload(prefix: string, gated: "s3" | "azure", extra: Record<string, string> = {}) {
        const upstream = gated === "s3" ? s3.endpoint : azure.connectionString.match(/BlobEndpoint=(http:\/\/[^/;]+)/)![1];
        const proxy = await gateProxy(upstream);
        const hook = await webhookSink();
        const env = envAll(prefix, {
            ...(gated === "s3"
                ? { BACKUP_S3_ENDPOINT: proxy.endpoint }
                : { AZURE_STORAGE_CONNECTION_STRING: azure.connectionString.replace(upstream, proxy.endpoint) }),
            BACKUP_WEBHOOK_URL: hook.url,
            ...extra,
        }, BIG);
        let pid = 0;
        const run = runCli(["backup"], env, { onStart: (p) => (pid = p) });
        await proxy.firstHeld;
        process.kill(pid, "SIGTERM");
        // The part in flight finishes as it would on the network; the stop must still win.
        setTimeout(() => proxy.release(), 200);
        const started = Date.now();
        const r = await run;
        // Well inside a pod's grace period.
        expect(Date.now() - started).toBeLessThan(15_000);
        await new Promise((res) => setTimeout(res, 300));
        try {
            return { r, proxy, hook };
        } finally {
            await proxy.close();
            await hook.close();
        }
    }

    async function expectNothingLeft(prefix: string): Promise<void> {
        expect(localFiles(prefix)).toEqual([]);
        expect(await s3Keys(prefix)).toEqual([]);
        expect(await azureKeys(prefix)).toEqual([]);
        expect(leftoverProcesses(BIG)).toEqual([]);
        expect(readdirSync(os.tmpdir()).filter((f) => f.startsWith("kx-dump-"))).toEqual([]);
    }

    it("with S3 held mid-part: exit 143, one failure line, notified, multipart aborted, nothing left", async () => {
        const { r, proxy, hook } = await stopMidUpload("term-s3", "s3");
        expect(r.code, r.stderr).toBe(143);
        expect(errorLine(r.stderr)).toMatch(/backup stopped by SIGTERM before it finished: nothing was committed/);
        expect(hook.events.map((e) => [e.command, e.ok])).toEqual([["backup", false]]);
        expect(proxy.multipart.created.size).toBeGreaterThan(0);
        for (const id of proxy.multipart.created) {
            expect(proxy.multipart.aborted.has(id) || !proxy.multipart.completed.has(id)).toBe(true);
        }
        expect([...proxy.multipart.completed]).toEqual([]);
        await expectNothingLeft("term-s3");
    }, 120_000);

    it("with Azure held mid-block: exit 143, nothing committed anywhere", async () => {
        const { r, hook } = await stopMidUpload("term-azure", "azure");
        expect(r.code, r.stderr).toBe(143);
        expect(hook.events.map((e) => e.ok)).toEqual([false]);
        await expectNothingLeft("term-azure");
    }, 120_000);

    it("directory format with 2 jobs: pg_dump and its workers stop, the scratch directory goes", async () => {
        const hook = await webhookSink();
        try {
            const env = envAll("term-dir", { BACKUP_FORMAT: "directory", BACKUP_JOBS: "2", BACKUP_WEBHOOK_URL: hook.url }, BIG);
            let pid = 0;
            const run = runCli(["backup"], env, { onStart: (p) => (pid = p) });
            // Wait until the leader and its workers run.
            const deadline = Date.now() + 30_000;
            while (leftoverProcesses(BIG).filter((l) => l.includes("pg_dump")).length < 2 && Date.now() < deadline) {
                await new Promise((res) => setTimeout(res, 20));
            }
            expect(leftoverProcesses(BIG).filter((l) => l.includes("pg_dump")).length).toBeGreaterThanOrEqual(2);
            process.kill(pid, "SIGTERM");
            const r = await run;
            expect(r.code, r.stderr).toBe(143);
            expect(hook.events.map((e) => e.ok)).toEqual([false]);
            await new Promise((res) => setTimeout(res, 300));
            await expectNothingLeft("term-dir");
        } finally {
            await hook.close();
        }
    }, 120_000);
});
