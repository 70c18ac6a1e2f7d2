/**
 * streamToTargets / commitManifest against local, s3rver and azurite: nothing becomes visible
 * before the producer is proven, in-progress markers bracket every run, a failure removes only
 * what the run created, and the error is the first cause, naming the target.
 */
import { spawn, spawnSync } from "child_process";
import { randomBytes } from "crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { PassThrough, Readable } from "stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AzureEmulator, S3Emulator, startAzurite, startS3 } from "../../jobs/dev/services";
import { commitManifest, discardArtifact, streamToTargets, StreamOptions } from "../../jobs/src/commit";
import { Logger } from "../../jobs/src/log";
import { Manifest, MANIFEST_KIND } from "../../jobs/src/manifest";
import { backupKey, inProgressKey, manifestKey } from "../../jobs/src/naming";
import { LocalTarget, readText, Target, Upload } from "../../jobs/src/targets";
import { AzureTarget } from "../../jobs/src/targets/azure";
import { S3Target } from "../../jobs/src/targets/s3";
import { CLI } from "../helpers/cli";
import { MIB, sha, sha256 } from "../helpers/targetContract";

let s3: S3Emulator;
let azure: AzureEmulator;
let root: string;
const log = new Logger("json", new PassThrough());

beforeAll(async () => {
    [s3, azure] = await Promise.all([startS3(), startAzurite()]);
    root = mkdtempSync(path.join(os.tmpdir(), "kx-commit-"));
}, 60_000);

afterAll(async () => {
    await Promise.all([s3?.stop(), azure?.stop()]);
    rmSync(root, { recursive: true, force: true });
});

const s3Target = (prefix: string, endpoint = s3.endpoint) =>
    new S3Target({ bucket: s3.bucket, prefix, endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }, maxAttempts: 1 });
const azureTarget = (prefix: string) => new AzureTarget({ container: azure.container, prefix, connectionString: azure.connectionString, maxTries: 1 });

/** The three targets, each under its own prefix. */
function targets(prefix: string): Target[] {
    mkdirSync(path.join(root, prefix), { recursive: true });
    return [new LocalTarget(path.join(root, prefix)), s3Target(prefix), azureTarget(prefix)];
}

/** Everything under a database folder on every target. */
async function everything(ts: Target[], db: string): Promise<string[]> {
    return (await Promise.all(ts.map(async (t) => (await t.list(`${db}/`)).map((o) => `${t.kind}:${o.key}`)))).flat().sort();
}

/** Wraps a target to count commits. */
function counted(t: Target): { target: Target; commits: () => number } {
    let commits = 0;
    const target = Object.create(t) as Target;
    target.upload = (key, o) => {
        const u = t.upload(key, o);
        return { ...u, sink: u.sink, commit: () => (commits++, u.commit()) } as Upload;
    };
    return { target, commits: () => commits };
}

/** The same target, slow to write small objects (the markers). */
function slowMarkers(t: Target, ms: number): Target {
    const slow = Object.create(t) as Target;
    slow.putSmall = async (...a) => {
        await new Promise((r) => setTimeout(r, ms));
        return t.putSmall(...a);
    };
    return slow;
}

function opts(key: string, o: Partial<StreamOptions> = {}): StreamOptions {
    return { key, expectedBytes: 0, alongside: [], label: "db", log, startedAt: new Date(), signal: new AbortController().signal, ...o };
}

function manifestFor(key: string, ts: Target[], bytes: number, sha: string): Manifest {
    return {
        kind: MANIFEST_KIND, manifestVersion: 2, database: "db", key, locations: {}, scope: "full", purpose: "manual", format: "custom",
        container: "pg_dump", options: { schemaOnly: false, dataOnly: false, tables: [], jobs: 1 }, startedAt: new Date().toISOString(),
        finishedAt: new Date().toISOString(), durationMs: 1, size: bytes, sha256: sha, pgDump: { version: "15" }, server: { version: "15", versionNum: 150000 },
        tables: [], counts: { method: "none" }, targets: ts.map((t) => t.kind),
    };
}

describe("commit only after the producer is proven", () => {
    it("a producer that fails after its last byte leaves nothing under the final name, ever, on any target", async () => {
        const wrapped = targets("late").map(counted);
        const ts = wrapped.map((w) => w.target);
        const key = backupKey(undefined, "db", new Date(), "dump");
        const data = randomBytes(7 * MIB);
        // The stream ends normally (a truncated dump looks complete); the exit code comes later.
        const exit = new Promise((_, reject) => setTimeout(() => reject(new Error("pg_dump of db failed: server closed the connection")), 600));
        let seenFinal = false;
        const watch = setInterval(() => {
            void everything(ts, "db").then((keys) => {
                seenFinal ||= keys.some((k) => k.endsWith(key));
            });
        }, 25);
        try {
            await expect(streamToTargets(Readable.from([data]), ts, opts(key, { alongside: [exit] }))).rejects.toThrow(/pg_dump of db failed/);
        } finally {
            clearInterval(watch);
        }
        expect(seenFinal).toBe(false);
        expect(wrapped.map((w) => w.commits())).toEqual([0, 0, 0]);
        expect(await everything(ts, "db")).toEqual([]);
    });

    it("commits everywhere once every byte is staged and the producer succeeded; the manifest then replaces the marker", async () => {
        const ts = targets("ok");
        const key = backupKey(undefined, "db", new Date(), "dump");
        const data = randomBytes(6 * MIB + 3);
        const source = new PassThrough();
        const run = streamToTargets(source, ts, opts(key, { expectedBytes: data.length }));
        source.write(data.subarray(0, MIB));
        // While it runs, every target carries the run's marker: who, where, since when.
        await expect.poll(async () => (await everything(ts, "db")).filter((k) => k.endsWith(".inprogress.json")).length, { timeout: 5000 }).toBe(3);
        for (const t of ts) {
            const marker = JSON.parse(await readText(t, inProgressKey(key)));
            expect(marker).toMatchObject({ kind: "kx-backup/in-progress", key, runId: key.match(/-([0-9a-f]{6})\.dump$/)![1], host: os.hostname(), pid: process.pid, what: "db" });
        }
        source.end(data.subarray(MIB));
        const streamed = await run;
        expect(streamed).toEqual({ bytes: data.length, sha256: sha256(data) });
        await commitManifest(ts, manifestFor(key, ts, streamed.bytes, streamed.sha256));
        expect(await everything(ts, "db")).toEqual(["azure", "local", "s3"].flatMap((k) => [`${k}:${key}`, `${k}:${manifestKey(key)}`]).sort());
        for (const t of ts) {
            expect(await sha(await t.get(key))).toBe(sha256(data));
        }
    });

    it("a producer that finishes before the markers are written still delivers every byte", async () => {
        const ts = targets("fast");
        const slow = slowMarkers(ts[1], 400);
        const key = backupKey(undefined, "db", new Date(), "dump");
        const child = spawn("printf", ["%s", "a short dump"], { stdio: ["ignore", "pipe", "ignore"] });
        const exited = new Promise<void>((resolve, reject) => child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`)))));
        const r = await streamToTargets(child.stdout, [ts[0], slow, ts[2]], opts(key, { alongside: [exited] }));
        expect(r.bytes).toBe("a short dump".length);
        await discardArtifact(key);
        expect(await everything(ts, "db")).toEqual([]);
    });
});

describe("failures: the first cause, named; only this run's objects removed", () => {
    it("a source that fails while the markers are written: its error, no crash, no hang, nothing left", async () => {
        const ts = targets("early");
        const slow = slowMarkers(ts[2], 300);
        const key = backupKey(undefined, "db", new Date(), "dump");
        const source = new PassThrough();
        setTimeout(() => source.destroy(new Error("pg_dump: read error")), 50);
        await expect(streamToTargets(source, [ts[0], ts[1], slow], opts(key))).rejects.toThrow("pg_dump: read error");
        expect(await everything(ts, "db")).toEqual([]);
    });

    it("BACKUP_LOCAL_DIR pointing at a file: ENOTDIR from the local target, not the producer's death that follows", async () => {
        const file = path.join(root, "a-file");
        writeFileSync(file, "x");
        const ts = [new LocalTarget(file), s3Target("enotdir"), azureTarget("enotdir")];
        const key = backupKey(undefined, "db", new Date(), "dump");
        const producer = spawn("head", ["-c", String(30 * MIB), "/dev/urandom"], { stdio: ["ignore", "pipe", "ignore"] });
        const exited = new Promise<void>((resolve, reject) => producer.once("close", (code) => (code === 0 ? resolve() : reject(new Error("pg_dump of db failed: no message")))));
        const err = await streamToTargets(producer.stdout, ts, opts(key, { alongside: [exited], onFailure: () => producer.kill() })).then(() => undefined, (e) => e as Error);
        expect(err?.message).toMatch(new RegExp(`^local file://${file}: ENOTDIR: not a directory`));
        expect(await everything(ts.slice(1), "db")).toEqual([]);
    });

    it("an unreachable S3 endpoint: the error names the S3 target and the connection failure", async () => {
        const ts = [new LocalTarget(path.join(root, "unreach")), s3Target("unreach", "http://127.0.0.1:9")];
        const key = backupKey(undefined, "db", new Date(), "dump");
        await expect(streamToTargets(Readable.from([randomBytes(1000)]), ts, opts(key))).rejects.toThrow(/^s3 s3:\/\/backups\/unreach: .*ECONNREFUSED/);
        expect(await everything(ts.slice(0, 1), "db")).toEqual([]);
    });

    it("an unwritable directory (a PVC with the wrong owner): the CLI says EACCES on the local target, exit 1, no unhandled rejection", () => {
        const dir = path.join(root, "root-owned");
        mkdirSync(dir, { recursive: true });
        chmodSync(dir, 0o755);
        const tree = mkdtempSync(path.join(os.tmpdir(), "kx-tree-"));
        writeFileSync(path.join(tree, "a.txt"), "a");
        chmodSync(tree, 0o755);
        const postgres = { uid: Number(spawnSync("id", ["-u", "postgres"]).stdout.toString()), gid: Number(spawnSync("id", ["-g", "postgres"]).stdout.toString()) };
        const r = spawnSync(process.execPath, ["--unhandled-rejections=strict", CLI, "archive", "--name", "cfg", "--path", tree, "--no-prune"], {
            env: { PATH: process.env.PATH, BACKUP_LOCAL_DIR: dir, BACKUP_LOG_FORMAT: "json" },
            ...postgres,
            encoding: "utf8",
            timeout: 60_000,
        });
        rmSync(tree, { recursive: true, force: true });
        expect(r.status, r.stderr).toBe(1);
        const error = r.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).find((l) => l.level === "error");
        expect(error?.msg).toMatch(new RegExp(`local file://${dir}: EACCES: permission denied, mkdir '${dir}/cfg'`));
        expect(r.stderr).not.toMatch(/Unhandled|UnhandledPromiseRejection|    at /);
    });

    it("a run that collides with another run's key fails, and the other run's backup stays whole", async () => {
        // s3rver ignores If-None-Match: S3 is covered against RGW.
        const ts = targets("collide").filter((t) => t.kind !== "s3");
        const key = backupKey(undefined, "db", new Date(), "dump", { runId: "same01" });
        const first = randomBytes(2 * MIB);
        const r = await streamToTargets(Readable.from([first]), ts, opts(key));
        await commitManifest(ts, manifestFor(key, ts, r.bytes, r.sha256));
        await expect(streamToTargets(Readable.from([randomBytes(3 * MIB)]), ts, opts(key))).rejects.toThrow(/already exists on .*never overwrites/);
        expect(await everything(ts, "db")).toEqual(["azure", "local"].flatMap((k) => [`${k}:${key}`, `${k}:${manifestKey(key)}`]).sort());
        for (const t of ts) {
            expect(await sha(await t.get(key))).toBe(sha256(first));
        }
    });

    it("a manifest that cannot be written on one target removes that copy (and its marker) only", async () => {
        const ts = targets("nomanifest");
        const key = backupKey(undefined, "db", new Date(), "dump");
        const r = await streamToTargets(Readable.from([randomBytes(MIB)]), ts, opts(key));
        // Something else already holds the manifest's name on Azure: never overwritten.
        await ts[2].putSmall(manifestKey(key), "not ours");
        await expect(commitManifest(ts, manifestFor(key, ts, r.bytes, r.sha256))).rejects.toThrow(/manifest could not be written to azure azure:\/\/devstoreaccount1\/backups\/nomanifest: .*already exists/);
        expect(await everything(ts, "db")).toEqual([
            `azure:${manifestKey(key)}`, `local:${key}`, `local:${manifestKey(key)}`, `s3:${key}`, `s3:${manifestKey(key)}`,
        ].sort());
        expect(await readText(ts[2], manifestKey(key))).toBe("not ours");
    });

    it("a failure after the stream and before the manifest: discardArtifact removes the committed copies and the markers", async () => {
        const ts = targets("between");
        const key = backupKey(undefined, "db", new Date(), "dump");
        await streamToTargets(Readable.from([randomBytes(6 * MIB)]), ts, opts(key));
        expect((await everything(ts, "db")).length).toBe(6);
        await discardArtifact(key, new Error("COMMIT failed"));
        expect(await everything(ts, "db")).toEqual([]);
    });

    it("its signal mid-stream (SIGTERM): nothing left — no object, no .partial, no marker", async () => {
        const ts = targets("stopped");
        const key = backupKey(undefined, "db", new Date(), "dump");
        const stop = new AbortController();
        const source = new PassThrough();
        const run = streamToTargets(source, ts, opts(key, { signal: stop.signal }));
        source.write(randomBytes(12 * MIB));
        await new Promise((r) => setTimeout(r, 500));
        stop.abort(Object.assign(new Error("stopped by SIGTERM"), { exitCode: 143 }));
        await expect(run).rejects.toThrow("stopped by SIGTERM");
        // Multipart uploads aborted on S3: s3rver cannot list them; rgw.test.ts checks it on RGW.
        expect(await everything(ts, "db")).toEqual([]);
    });
});
