/**
 * The S3 target against a real S3 server: Ceph RGW 16 on a throwaway single-node cluster, with
 * versioning, delete markers and Object Lock, behind a proxy that applies the two AWS rules RGW
 * 16 lacks (a checksum on every write to an Object Lock bucket; If-None-Match on PutObject and
 * CompleteMultipartUpload). One cluster for the whole file.
 */
import {
    CreateBucketCommand,
    DeleteObjectCommand,
    HeadObjectCommand,
    ListMultipartUploadsCommand,
    ListObjectVersionsCommand,
    PutBucketVersioningCommand,
    PutObjectCommand,
    PutObjectLockConfigurationCommand,
    S3Client,
} from "@aws-sdk/client-s3";
import { execFile } from "child_process";
import { createHash, randomBytes } from "crypto";
import { promisify } from "util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RgwCluster, startRgw } from "../../jobs/dev/cephRgw";
import { S3RulesProxy, startS3RulesProxy } from "../../jobs/dev/cephS3Proxy";
import { MANIFEST_KIND } from "../../jobs/src/manifest";
import { backupKey, globalsKey, manifestKey } from "../../jobs/src/naming";
import { S3Target, signedSha256 } from "../../jobs/src/targets/s3";
import { logLines, runCli } from "../helpers/cli";
import { MIB, sha, sha256, stage, targetContract } from "../helpers/targetContract";

const LOCKED = "kx-locked";
const VERSIONED = "kx-versioned";
const PLAIN = "kx-plain";

let rgw: RgwCluster;
let proxy: S3RulesProxy;
let direct: S3Client;
let viaProxy: S3Client;

beforeAll(async () => {
    rgw = await startRgw();
    proxy = await startS3RulesProxy(rgw);
    const client = (endpoint: string) => new S3Client({
        endpoint, forcePathStyle: true, region: rgw.region, maxAttempts: 1,
        credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
        requestChecksumCalculation: "WHEN_REQUIRED",
    });
    direct = client(rgw.endpoint);
    viaProxy = client(proxy.endpoint);
    await direct.send(new CreateBucketCommand({ Bucket: PLAIN }));
    await direct.send(new CreateBucketCommand({ Bucket: VERSIONED }));
    await direct.send(new PutBucketVersioningCommand({ Bucket: VERSIONED, VersioningConfiguration: { Status: "Enabled" } }));
    // The prod bucket: Object Lock with a default retention (GOVERNANCE here, so the test store can be torn down).
    await direct.send(new CreateBucketCommand({ Bucket: LOCKED, ObjectLockEnabledForBucket: true }));
    await direct.send(new PutObjectLockConfigurationCommand({
        Bucket: LOCKED,
        ObjectLockConfiguration: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 1 } } },
    }));
}, 120_000);

afterAll(async () => {
    await proxy?.close();
    await rgw?.stop();
});

const target = (bucket: string, prefix = "krystalinex") => new S3Target({
    bucket, prefix, endpoint: proxy.endpoint, forcePathStyle: true, region: rgw.region,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
});

const md5hex = (b: Buffer) => createHash("md5").update(b).digest("hex");

describe("why the proxy: RGW 16 without it", () => {
    it("starts in seconds", () => {
        expect(rgw.startupMs).toBeLessThan(30_000);
    });

    it("accepts a write without checksum on an Object Lock bucket, and ignores If-None-Match; the proxy applies AWS's rules", async () => {
        await direct.send(new PutObjectCommand({ Bucket: LOCKED, Key: "probe/a", Body: Buffer.from("1") }));
        await direct.send(new PutObjectCommand({ Bucket: LOCKED, Key: "probe/a", Body: Buffer.from("2"), IfNoneMatch: "*" }));
        const refused = await viaProxy.send(new PutObjectCommand({ Bucket: LOCKED, Key: "probe/b", Body: Buffer.from("1") })).catch((e) => e);
        expect(refused.$metadata.httpStatusCode).toBe(400);
        expect(refused.message).toBe("Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters");
        const md5 = createHash("md5").update("3").digest("base64");
        const taken = await viaProxy.send(new PutObjectCommand({ Bucket: LOCKED, Key: "probe/a", Body: Buffer.from("3"), ContentMD5: md5, IfNoneMatch: "*" })).catch((e) => e);
        expect(taken.$metadata.httpStatusCode).toBe(412);
    });

    it("checks the signed payload hash: a body other than the one our digest signs is refused (the S3 target's one SHA-256 is a real integrity check)", async () => {
        const digest = createHash("sha256").update("original").digest();
        const bad = await viaProxy.send(signedSha256(new PutObjectCommand({
            Bucket: LOCKED, Key: "probe/d", Body: Buffer.from("corrupted"), ChecksumAlgorithm: "SHA256", ChecksumSHA256: digest.toString("base64"),
        }), digest)).catch((e) => e);
        expect(bad.$metadata?.httpStatusCode).toBe(400);
        expect(bad.name).toBe("XAmzContentSHA256Mismatch");
        const missing = await direct.send(new HeadObjectCommand({ Bucket: LOCKED, Key: "probe/d" })).catch((e) => e);
        expect(missing.$metadata?.httpStatusCode).toBe(404);
    });

    it("checks the Content-MD5 it is given: a corrupted body is refused", async () => {
        const bad = await viaProxy.send(new PutObjectCommand({ Bucket: LOCKED, Key: "probe/c", Body: Buffer.from("corrupted"), ContentMD5: createHash("md5").update("original").digest("base64") })).catch((e) => e);
        expect(bad.name).toBe("BadDigest");
    });
});

// The prod bucket: versioned, Object Lock by default. Deletes there only hide.
targetContract("s3 (RGW, Object Lock bucket)", () => target(LOCKED), { exclusive: true, deleteResult: "hidden" });

describe("on RGW: checksums, integrity, deletes, aborts", () => {
    it("every PutObject and UploadPart the target sent carried x-amz-checksum-sha256, signed as its payload hash, and none was refused", () => {
        const writes = proxy.requests.filter((r) => r.method === "PUT" && r.key.startsWith("krystalinex/") && !r.query.has("uploads"));
        expect(writes.filter((w) => w.query.has("partNumber")).length).toBeGreaterThan(3);
        expect(writes.filter((w) => !w.query.has("partNumber")).length).toBeGreaterThan(3);
        for (const w of writes) {
            expect(w.headers["x-amz-checksum-sha256"], w.key).toMatch(/^[A-Za-z0-9+/]{43}=$/);
            expect(w.headers["x-amz-content-sha256"], w.key).toBe(Buffer.from(String(w.headers["x-amz-checksum-sha256"]), "base64").toString("hex"));
            expect(w.headers["x-amz-trailer"]).toBeUndefined();
        }
        expect(proxy.requests.filter((r) => r.key.startsWith("krystalinex/") && r.refused === 400)).toEqual([]);
    });

    it("objects carry their own integrity: RGW's ETag is the MD5 of what it stored, per part for multipart; and the run that wrote them", async () => {
        const t = target(LOCKED, "etag");
        const small = randomBytes(300_000);
        const big = randomBytes(12 * MIB);
        await (await stage(t, "db/db-20260101-000000-aaaa.dump", small, { runId: "aaaa" })).commit();
        await (await stage(t, "db/db-20260101-000000-bbbb.dump", big, { runId: "bbbb" })).commit();
        const headSmall = await direct.send(new HeadObjectCommand({ Bucket: LOCKED, Key: "etag/db/db-20260101-000000-aaaa.dump" }));
        expect(headSmall.ETag).toBe(`"${md5hex(small)}"`);
        expect(headSmall.Metadata).toEqual({ "kx-backup-run": "aaaa" });
        const parts = [big.subarray(0, 5 * MIB), big.subarray(5 * MIB, 10 * MIB), big.subarray(10 * MIB)];
        const composite = createHash("md5").update(Buffer.concat(parts.map((p) => createHash("md5").update(p).digest()))).digest("hex");
        const headBig = await direct.send(new HeadObjectCommand({ Bucket: LOCKED, Key: "etag/db/db-20260101-000000-bbbb.dump" }));
        expect(headBig.ETag).toBe(`"${composite}-3"`);
        expect(headBig.Metadata).toEqual({ "kx-backup-run": "bbbb" });
        expect(headBig.ObjectLockMode).toBe("GOVERNANCE");
    });

    it("a delete says what really happened: deleted (plain), delete marker (versioned), retained by Object Lock until … (locked)", async () => {
        const plain = target(PLAIN, "del");
        const versioned = target(VERSIONED, "del");
        const locked = target(LOCKED, "del");
        for (const t of [plain, versioned, locked]) {
            await t.putSmall("db/x.json", "{}");
        }
        expect(await plain.delete("db/x.json")).toEqual({ result: "deleted" });
        const v = await versioned.delete("db/x.json");
        expect(v).toMatchObject({ result: "hidden", note: expect.stringMatching(/^delete marker written; version \S+ remains until the bucket's noncurrent-version rule expires it$/) });
        const l = await locked.delete("db/x.json");
        expect(l).toMatchObject({ result: "hidden", note: expect.stringMatching(/^delete marker written; version \S+ remains under Object Lock \(GOVERNANCE\)$/) });
        expect(Math.abs(l.retainedUntil!.getTime() - (Date.now() + 86_400_000))).toBeLessThan(120_000);
        // The lock is real: that version cannot be deleted.
        const versions = await direct.send(new ListObjectVersionsCommand({ Bucket: LOCKED, Prefix: "del/db/x.json" }));
        const refused = await direct.send(new DeleteObjectCommand({ Bucket: LOCKED, Key: "del/db/x.json", VersionId: versions.Versions![0].VersionId })).catch((e) => e);
        expect(refused.$metadata.httpStatusCode).toBe(403);
    });

    it("an aborted multipart upload leaves no upload and no parts behind (AbortMultipartUpload)", async () => {
        const t = target(VERSIONED, "abort");
        const stop = new AbortController();
        const up = t.upload("db/db-20260101-000000-cccc.dump", { expectedBytes: 0, signal: stop.signal });
        up.sink.on("error", () => undefined);
        up.sink.write(randomBytes(16 * MIB));
        await expect.poll(async () => (await direct.send(new ListMultipartUploadsCommand({ Bucket: VERSIONED, Prefix: "abort/" }))).Uploads?.length ?? 0, { timeout: 10_000 }).toBe(1);
        stop.abort(new Error("stopped by SIGTERM"));
        await up.abort();
        expect((await direct.send(new ListMultipartUploadsCommand({ Bucket: VERSIONED, Prefix: "abort/" }))).Uploads ?? []).toEqual([]);
        expect((await direct.send(new ListObjectVersionsCommand({ Bucket: VERSIONED, Prefix: "abort/" }))).Versions ?? []).toEqual([]);
    });
});

describe("after a malicious delete: list --deleted, undelete, and a prune that says what it did", () => {
    const prefix = "undel";
    const db = "crypto_exchange";
    const day = 86_400_000;
    let env: Record<string, string>;
    const dumps = new Map<string, Buffer>();

    /** A complete backup as kx-backup writes it: dump, globals, manifest (and a verify record). */
    async function seed(at: Date, o: { verified?: boolean; manifest?: boolean } = {}): Promise<string> {
        const t = target(LOCKED, prefix);
        const key = backupKey(undefined, db, at, "dump");
        const data = randomBytes(200_000 + Math.floor(Math.random() * 1000));
        dumps.set(key, data);
        await (await stage(t, key, data)).commit();
        await t.putSmall(globalsKey(key), "CREATE ROLE app;\n");
        if (o.manifest !== false) {
            await t.putSmall(manifestKey(key), JSON.stringify({
                kind: MANIFEST_KIND, manifestVersion: 2, database: db, key, locations: { s3: key }, scope: "full", purpose: "scheduled", format: "custom",
                container: "pg_dump", options: { schemaOnly: false, dataOnly: false, tables: [], jobs: 1 }, startedAt: at.toISOString(), finishedAt: at.toISOString(),
                durationMs: 1000, size: data.length, sha256: sha256(data), pgDump: { version: "15.8" }, server: { version: "15.8", versionNum: 150008 },
                tables: [], counts: { method: "snapshot-query" }, targets: ["s3"],
            }));
        }
        if (o.verified) {
            // A passing record of this very backup: a bare { ok: true } no longer counts as verified.
            await t.putSmall(`${key}.verify.json`, JSON.stringify({ kind: "kx-backup/verify", database: db, key, sha256: sha256(data), ok: true, finishedAt: at.toISOString() }));
        }
        return key;
    }

    beforeAll(() => {
        env = {
            BACKUP_S3_BUCKET: LOCKED, BACKUP_S3_PREFIX: prefix, BACKUP_S3_ENDPOINT: proxy.endpoint, BACKUP_S3_FORCE_PATH_STYLE: "true",
            AWS_REGION: rgw.region, AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
        };
    });

    it("prune on the locked bucket hides old backups behind delete markers and says so, never claiming a deletion", async () => {
        const old = await seed(new Date(Date.now() - 20 * day));
        await seed(new Date(Date.now() - 1 * day));
        const r = await runCli(["prune", "--database", db], { ...env, BACKUP_RETENTION_DAYS: "7", BACKUP_KEEP_MIN: "1" });
        expect(r.code, r.stderr).toBe(0);
        const lines = logLines(r.stderr);
        expect(lines.filter((l) => l.event === "prune.delete")).toEqual([]);
        const hidden = lines.find((l) => l.event === "prune.hidden");
        expect(hidden?.key).toBe(old);
        expect(hidden?.msg).toMatch(/hidden, not deleted: delete marker written; version \S+ remains under Object Lock \(GOVERNANCE\); the data is retained until \d{4}-/);
        expect(lines.find((l) => l.event === "prune.summary")?.msg).toMatch(/deleted 0, hid 1 \(the store keeps their data\), kept 1/);
    });

    it("list --deleted shows what a delete hid; undelete brings back the newest complete one, exactly, and says what it restored", async () => {
        const t = target(LOCKED, prefix);
        const newest = await seed(new Date(Date.now() - 2 * 3_600_000), { verified: true });
        await seed(new Date(Date.now() - 3_600_000), { manifest: false });
        // The attack: everything current is deleted.
        for (const o of await t.list(`${db}/`)) {
            await t.delete(o.key);
        }
        expect(JSON.parse((await runCli(["list", "--database", db, "--json"], env)).stdout)).toEqual([]);

        // The operator's own view, with the AWS CLI: delete markers on top.
        const { stdout } = await promisify(execFile)("aws", ["--endpoint-url", proxy.endpoint, "s3api", "list-object-versions", "--bucket", LOCKED, "--prefix", `${prefix}/${newest}`, "--output", "json"], {
            env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/root", AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_DEFAULT_REGION: rgw.region },
        });
        expect(JSON.parse(stdout).DeleteMarkers.filter((m: { IsLatest: boolean }) => m.IsLatest).length).toBe(4);

        const listed = await runCli(["list", "--deleted", "--database", db, "--json"], env);
        expect(listed.code, listed.stderr).toBe(0);
        const rows = JSON.parse(listed.stdout).rows;
        expect(rows.map((r: { name: string; status: string; how: string }) => [r.status, r.how])).toEqual([
            ["incomplete", "delete marker"], ["complete", "delete marker"], ["complete", "delete marker"], ["complete", "delete marker"],
        ]);
        expect(rows[1].name).toBe(newest.slice(db.length + 1));
        const text = await runCli(["list", "--deleted", "--database", db], env);
        expect(text.stdout).toMatch(/DATABASE +TARGET +NAME +SIZE +TAKEN +HIDDEN BY +STATUS/);

        const r = await runCli(["undelete", "--database", db], env);
        expect(r.code, r.stderr).toBe(0);
        const restored = logLines(r.stderr).filter((l) => l.event === "undelete.object").map((l) => l.key);
        expect(restored).toEqual([newest, globalsKey(newest), `${newest}.verify.json`, manifestKey(newest)]);
        expect(logLines(r.stderr).find((l) => l.event === "undelete.object")?.msg).toMatch(/removed 1 delete marker\(s\); version \S+ is current again/);
        const after = JSON.parse((await runCli(["list", "--database", db, "--json"], env)).stdout);
        expect(after.map((b: { name: string; status: string }) => [b.name, b.status])).toEqual([[newest.slice(db.length + 1), "verified"]]);
        expect(await sha(await t.get(newest))).toBe(sha256(dumps.get(newest)!));
    });

    it("undelete by name, and the mistakes: a name that is not deleted, a local target, a database name that is not one", async () => {
        const hidden = JSON.parse((await runCli(["list", "--deleted", "--database", db, "--json"], env)).stdout).rows.filter((r: { status: string }) => r.status === "complete");
        const older = hidden[hidden.length - 1].name as string;
        const named = await runCli(["undelete", "--database", db, "--backup", older, "--from", "s3"], env);
        expect(named.code, named.stderr).toBe(0);
        expect(logLines(named.stderr).filter((l) => l.event === "undelete.object").length).toBe(3);

        const again = await runCli(["undelete", "--database", db, "--backup", older], env);
        expect(again.code).toBe(1);
        expect(logLines(again.stderr).find((l) => l.level === "error")?.msg).toMatch(/is not among the deleted backups of crypto_exchange/);

        const local = await runCli(["undelete", "--database", db, "--from", "local"], { BACKUP_LOCAL_DIR: "/tmp" });
        expect(local.code).toBe(2);
        expect(logLines(local.stderr).find((l) => l.level === "error")?.msg).toMatch(/local file:\/\/\/tmp has no versions: a deleted file there is gone/);

        const bad = await runCli(["undelete", "--database", "../etc"], env);
        expect(bad.code).toBe(2);
    });
});
