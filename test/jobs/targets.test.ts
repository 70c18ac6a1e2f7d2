/**
 * One contract, three targets: local directory, S3 (s3rver) and Azure Blob (azurite), the
 * emulators behind a proxy that records what the clients really send. The RGW suite
 * (rgw.test.ts) runs the same contract against a real S3 server with versioning and Object Lock.
 */
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient } from "@azure/storage-blob";
import { createHash, randomBytes } from "crypto";
import { mkdirSync, mkdtempSync, promises as fsp, readFileSync, rmSync, statSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { PassThrough } from "stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AzureEmulator, S3Emulator, startAzurite, startS3 } from "../../jobs/dev/services";
import { chunkSize, LocalTarget, ObjectExistsError, Target } from "../../jobs/src/targets";
import { AZURE_BLOCK_LIMITS, AzureTarget } from "../../jobs/src/targets/azure";
import { S3_PART_LIMITS, S3Target } from "../../jobs/src/targets/s3";
import { stagedUpload } from "../../jobs/src/targets/staged";
import { recordingProxy, RecordingProxy } from "../helpers/recordingProxy";
import { MIB, stage, targetContract } from "../helpers/targetContract";

let s3: S3Emulator;
let azure: AzureEmulator;
let s3Seen: RecordingProxy;
let azureSeen: RecordingProxy;
let localRoot: string;

beforeAll(async () => {
    [s3, azure] = await Promise.all([startS3(), startAzurite()]);
    [s3Seen, azureSeen] = await Promise.all([recordingProxy(s3.endpoint), recordingProxy(azure.connectionString.match(/BlobEndpoint=(http:\/\/[^/;]+)/)![1])]);
    localRoot = mkdtempSync(path.join(os.tmpdir(), "kx-local-"));
}, 60_000);

afterAll(async () => {
    await Promise.all([s3Seen?.close(), azureSeen?.close()]);
    await Promise.all([s3?.stop(), azure?.stop()]);
    rmSync(localRoot, { recursive: true, force: true });
});

const makeS3 = () => new S3Target({ bucket: s3.bucket, prefix: "krystalinex", endpoint: s3Seen.endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
const makeAzure = () => new AzureTarget({ container: azure.container, prefix: "krystalinex", connectionString: azure.connectionString.replace(/BlobEndpoint=http:\/\/[^/;]+/, `BlobEndpoint=${azureSeen.endpoint}`) });

targetContract("local", () => new LocalTarget(localRoot), { exclusive: true, deleteResult: "deleted" });
// s3rver ignores If-None-Match: exclusivity on S3 is proven against RGW (rgw.test.ts).
targetContract("s3 (s3rver)", makeS3, { exclusive: false, deleteResult: "deleted" });
targetContract("azure (azurite)", makeAzure, { exclusive: true, deleteResult: "deleted" });

describe("local target: owner-only files, published without ever replacing one", () => {
    const mode = (p: string) => statSync(p).mode & 0o777;

    it("writes dumps and manifests 0600 in 0700 folders, whatever the umask", async () => {
        const t = new LocalTarget(localRoot);
        const old = process.umask(0o000);
        try {
            await (await stage(t, "modes/modes-20260101-000000-abcd.dump", randomBytes(1000))).commit();
            await t.putSmall("modes/modes-20260101-000000-abcd.dump.manifest.json", "{}");
        } finally {
            process.umask(old);
        }
        expect(mode(path.join(localRoot, "modes/modes-20260101-000000-abcd.dump"))).toBe(0o600);
        expect(mode(path.join(localRoot, "modes/modes-20260101-000000-abcd.dump.manifest.json"))).toBe(0o600);
        expect(mode(path.join(localRoot, "modes"))).toBe(0o700);
    });

    it("a file already under the final name is never replaced, and the failed upload removes only its own .partial", async () => {
        const t = new LocalTarget(localRoot);
        mkdirSync(path.join(localRoot, "taken"), { recursive: true });
        const theirs = path.join(localRoot, "taken/taken-20260101-000000.dump");
        writeFileSync(theirs, "a runbook-era dump");
        const up = await stage(t, "taken/taken-20260101-000000.dump", randomBytes(2 * MIB));
        await expect(up.commit()).rejects.toThrow(ObjectExistsError);
        await up.abort();
        expect(readFileSync(theirs, "utf8")).toBe("a runbook-era dump");
        expect((await t.list("taken/")).map((o) => o.key)).toEqual(["taken/taken-20260101-000000.dump"]);
    });

    it("another run's .partial is neither written into nor removed", async () => {
        const t = new LocalTarget(localRoot);
        mkdirSync(path.join(localRoot, "busy"), { recursive: true });
        const partial = path.join(localRoot, "busy/busy-20260101-000000-abcd.dump.partial");
        writeFileSync(partial, "another run is writing this");
        const up = t.upload("busy/busy-20260101-000000-abcd.dump", { expectedBytes: 0, signal: new AbortController().signal });
        up.sink.on("error", () => undefined);
        await expect(up.done()).rejects.toThrow(/busy-20260101-000000-abcd\.dump\.partial already exists .*another run is writing it/);
        await up.abort();
        expect(readFileSync(partial, "utf8")).toBe("another run is writing this");
    });

    it("BACKUP_LOCAL_DIR pointing at a file fails with ENOTDIR, not later with something else", async () => {
        const file = path.join(localRoot, "not-a-dir");
        writeFileSync(file, "x");
        const up = new LocalTarget(file).upload("db/db-20260101-000000-abcd.dump", { expectedBytes: 0, signal: new AbortController().signal });
        up.sink.on("error", () => undefined);
        await expect(up.done()).rejects.toThrow(/ENOTDIR/);
        await expect(new LocalTarget(file).putSmall("db/x.json", "{}")).rejects.toThrow(/ENOTDIR/);
    });

    it("on a filesystem without hard links (an SMB share), a placeholder reserves the name: still never replaced", async () => {
        const t = new LocalTarget(localRoot);
        const link = fsp.link;
        fsp.link = async () => {
            throw Object.assign(new Error("EPERM: operation not permitted, link"), { code: "EPERM" });
        };
        try {
            const data = randomBytes(3 * MIB);
            await (await stage(t, "smb/smb-20260101-000000-abcd.dump", data)).commit();
            expect((await t.list("smb/")).map((o) => o.key)).toEqual(["smb/smb-20260101-000000-abcd.dump"]);
            expect(readFileSync(path.join(localRoot, "smb/smb-20260101-000000-abcd.dump")).equals(data)).toBe(true);
            const second = await stage(t, "smb/smb-20260101-000000-abcd.dump", randomBytes(10));
            await expect(second.commit()).rejects.toThrow(ObjectExistsError);
            await second.abort();
            expect(readFileSync(path.join(localRoot, "smb/smb-20260101-000000-abcd.dump")).equals(data)).toBe(true);
            expect((await t.list("smb/")).map((o) => o.key)).toEqual(["smb/smb-20260101-000000-abcd.dump"]);
        } finally {
            fsp.link = link;
        }
    });

    it("reads an object back in 1 MiB chunks (a verify hashes and copies the whole dump through them)", async () => {
        const t: Target = new LocalTarget(localRoot);
        const data = randomBytes(3 * MIB + 5);
        await (await stage(t, "chunks/chunks-20260101-000000-abcd.dump", data)).commit();
        const sizes: number[] = [];
        for await (const chunk of await t.get("chunks/chunks-20260101-000000-abcd.dump")) {
            sizes.push((chunk as Buffer).length);
        }
        expect(sizes).toEqual([MIB, MIB, MIB, 5]);
    });

    it("has no versions: nothing to list or restore after a delete", () => {
        const t: Target = new LocalTarget(localRoot);
        expect(t.listHidden).toBeUndefined();
        expect(t.restoreHidden).toBeUndefined();
    });
});

describe("what the S3 client sends: a checksum in the headers of every PutObject and UploadPart", () => {
    it("tags its objects with the run that wrote them", async () => {
        const t = makeS3();
        await (await stage(t, "tag/tag-20260101-000000-run1.dump", randomBytes(11 * MIB), { runId: "run1" })).commit();
        await (await stage(t, "tag/tag-20260101-000000-run2.dump", randomBytes(1000), { runId: "run2" })).commit();
        const client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
        for (const run of ["run1", "run2"]) {
            const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `krystalinex/tag/tag-20260101-000000-${run}.dump` }));
            expect(head.Metadata).toEqual({ "kx-backup-run": run });
        }
    });

    it("every body-carrying write of this file's S3 traffic had x-amz-checksum-sha256 of its own bytes, in headers, and the same digest as its signed payload hash", () => {
        const writes = s3Seen.seen.filter((r) => r.method === "PUT" && !r.url.searchParams.has("uploads"));
        const parts = writes.filter((r) => r.url.searchParams.has("partNumber"));
        const puts = writes.filter((r) => !r.url.searchParams.has("partNumber"));
        expect(parts.length).toBeGreaterThan(5);
        expect(puts.length).toBeGreaterThan(5);
        for (const w of writes) {
            expect(w.headers["x-amz-checksum-sha256"], w.url.pathname).toBe(w.sha256);
            // What S3 requires of a write under Object Lock: the checksum's algorithm declared.
            expect(w.headers["x-amz-sdk-checksum-algorithm"], w.url.pathname).toBe("SHA256");
            // The signature covers the body: S3 recomputes this and refuses a body that differs.
            expect(w.headers["x-amz-content-sha256"], w.url.pathname).toBe(Buffer.from(w.sha256, "base64").toString("hex"));
            // No streamed trailing checksums: RGW refuses them (411), s3rver mis-stores them.
            expect(w.headers["x-amz-trailer"]).toBeUndefined();
            expect(String(w.headers["content-encoding"] ?? "")).not.toMatch(/aws-chunked/);
            expect(String(w.headers["x-amz-content-sha256"] ?? "")).not.toMatch(/^STREAMING-/);
        }
        // Dumps, manifests, markers: created only if absent.
        expect(puts.filter((w) => w.headers["if-none-match"] === "*").length).toBeGreaterThan(0);
    });

    it("multipart uploads declare SHA-256, list each part's checksum on Complete, and complete only if the key is free", () => {
        const creates = s3Seen.seen.filter((r) => r.method === "POST" && r.url.searchParams.has("uploads"));
        const completes = s3Seen.seen.filter((r) => r.method === "POST" && r.url.searchParams.has("uploadId"));
        expect(creates.length).toBeGreaterThan(0);
        for (const c of creates) {
            expect(c.headers["x-amz-checksum-algorithm"]).toBe("SHA256");
        }
        expect(completes.length).toBeGreaterThan(0);
        for (const c of completes) {
            expect(c.headers["if-none-match"]).toBe("*");
            const partsListed = (c.text!.match(/<Part>/g) ?? []).length;
            expect((c.text!.match(/<ChecksumSHA256>[A-Za-z0-9+/=]{44}<\/ChecksumSHA256>/g) ?? []).length).toBe(partsListed);
        }
    });
});

describe("a stream far larger than its estimate: parts grow within the store's part limit, and the operator is told", () => {
    const MIB_LIMITS = { maxParts: 4, min: 5 * MIB, max: 40 * MIB };
    it("S3: 30 MiB estimated at 1 byte goes up in 4 parts (5, 5, 10, rest), whole, with a warning per growth", async () => {
        const t = new S3Target({ bucket: s3.bucket, prefix: "krystalinex", endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1",
            credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }, partLimits: MIB_LIMITS });
        const data = randomBytes(30 * MIB);
        const warned: string[] = [];
        const up = t.upload("grow/grow-20260101-000000-g1.dump", { expectedBytes: 1, signal: new AbortController().signal, warn: (m) => warned.push(m) });
        await Promise.all([writeAllTo(up.sink, data), up.done()]);
        await up.commit();
        const back = Buffer.concat(await (await t.get("grow/grow-20260101-000000-g1.dump")).toArray());
        expect(back.equals(data)).toBe(true);
        expect(warned).toEqual([
            expect.stringMatching(/^s3: the stream is far larger than the database size suggested; parts grow to 10 MiB to stay within the store's part limit/),
            expect.stringMatching(/parts grow to 20 MiB/),
        ]);
    });

    it("Azure: the same, in blocks", async () => {
        const t = new AzureTarget({ container: azure.container, prefix: "krystalinex", connectionString: azure.connectionString, partLimits: { maxParts: 4, min: 4 * MIB, max: 40 * MIB } });
        const data = randomBytes(25 * MIB);
        const warned: string[] = [];
        const up = t.upload("grow/grow-20260101-000000-g2.dump", { expectedBytes: 1, signal: new AbortController().signal, warn: (m) => warned.push(m) });
        await Promise.all([writeAllTo(up.sink, data), up.done()]);
        await up.commit();
        const back = Buffer.concat(await (await t.get("grow/grow-20260101-000000-g2.dump")).toArray());
        expect(back.equals(data)).toBe(true);
        expect(warned.length).toBe(2);
    });
});

async function writeAllTo(sink: NodeJS.WritableStream, data: Buffer): Promise<void> {
    for (let i = 0; i < data.length; i += 256 * 1024) {
        if (!sink.write(data.subarray(i, i + 256 * 1024))) {
            await new Promise((r) => sink.once("drain", r));
        }
    }
    sink.end();
}

describe("what the Azure client sends: transactional MD5 per block, the blob's MD5 and ifNoneMatch on commit", () => {
    it("stores the whole blob's Content-MD5 and the run that wrote it", async () => {
        const t = makeAzure();
        const data = randomBytes(9 * MIB + 7);
        await (await stage(t, "md5/md5-20260101-000000-run3.dump", data, { runId: "run3" })).commit();
        const blob = BlobServiceClient.fromConnectionString(azure.connectionString).getContainerClient(azure.container).getBlobClient("krystalinex/md5/md5-20260101-000000-run3.dump");
        const props = await blob.getProperties();
        expect(Buffer.from(props.contentMD5!).toString("base64")).toBe(createHash("md5").update(data).digest("base64"));
        expect(props.metadata).toEqual({ kx_backup_run: "run3" });
    });

    it("every block of this file's Azure traffic carried the MD5 of its bytes; every commit was conditional", () => {
        const blocks = azureSeen.seen.filter((r) => r.method === "PUT" && r.url.searchParams.get("comp") === "block");
        const lists = azureSeen.seen.filter((r) => r.method === "PUT" && r.url.searchParams.get("comp") === "blocklist");
        const blobs = azureSeen.seen.filter((r) => r.method === "PUT" && !r.url.searchParams.has("comp") && r.url.pathname.split("/").length > 3);
        expect(blocks.length).toBeGreaterThan(3);
        for (const b of blocks) {
            expect(b.headers["content-md5"], b.url.pathname).toBe(b.md5);
        }
        expect(lists.length).toBeGreaterThan(3);
        for (const l of lists) {
            expect(l.headers["x-ms-blob-content-md5"]).toMatch(/^[A-Za-z0-9+/]{22}==$/);
            expect(l.headers["if-none-match"]).toBe("*");
        }
        for (const b of blobs) {
            expect(b.headers["x-ms-blob-content-md5"], b.url.pathname).toBe(b.md5);
        }
        expect(blobs.filter((b) => b.headers["if-none-match"] === "*").length).toBeGreaterThan(0);
    });
});

describe("a stop while the commit is in flight", () => {
    function store(publishMs: number, publishFails: boolean) {
        const calls: string[] = [];
        const stop = new AbortController();
        const sink = new PassThrough();
        sink.resume();
        sink.on("error", () => undefined);
        const up = stagedUpload({
            sink,
            staged: Promise.resolve(),
            signal: stop.signal,
            publish: () => new Promise((resolve, reject) => setTimeout(() => (calls.push("published"), publishFails ? reject(new Error("503")) : resolve()), publishMs)),
            unpublish: async () => void calls.push("unpublish"),
            unstage: async () => void calls.push("unstage"),
        });
        return { up, stop, calls };
    }

    it("waits for the commit to land, then removes the object it made visible", async () => {
        const { up, stop, calls } = store(200, false);
        const committing = up.commit();
        await new Promise((r) => setTimeout(r, 20));
        stop.abort(new Error("stopped by SIGTERM"));
        await committing;
        await up.abort();
        expect(calls).toEqual(["published", "unpublish"]);
    });

    it("a commit that failed leaves only the staged data to drop", async () => {
        const { up, stop, calls } = store(100, true);
        const committing = up.commit().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 20));
        stop.abort(new Error("stopped by SIGTERM"));
        await committing;
        await up.abort();
        expect(calls).toEqual(["published", "unstage"]);
    });

    it("a stop before the commit starts: nothing is published, the staged data is dropped", async () => {
        const { up, stop, calls } = store(100, false);
        stop.abort(new Error("stopped by SIGTERM"));
        await expect(up.commit()).rejects.toThrow(/aborted/);
        await up.abort();
        expect(calls).toEqual(["unstage"]);
    });
});

describe("chunk sizes", () => {
    it("keeps small dumps at the minimum part size (flat memory)", () => {
        expect(chunkSize(2 * 1024 * MIB, S3_PART_LIMITS)).toBe(5 * MIB);
        expect(chunkSize(0, AZURE_BLOCK_LIMITS)).toBe(4 * MIB);
    });

    it("keeps a 5 TB dump under 10,000 S3 parts and 50,000 Azure blocks", () => {
        const fiveTB = 5 * 1024 ** 4;
        const part = chunkSize(fiveTB, S3_PART_LIMITS);
        expect(Math.ceil(fiveTB / part)).toBeLessThanOrEqual(10_000);
        expect(part).toBeLessThanOrEqual(5 * 1024 * MIB);
        // With room to spare: even twice the estimate fits.
        expect(Math.ceil((2 * fiveTB) / part)).toBeLessThanOrEqual(10_000);
        expect(Math.ceil(fiveTB / chunkSize(fiveTB, AZURE_BLOCK_LIMITS))).toBeLessThanOrEqual(50_000);
    });
});

describe("a listing the server cuts short", () => {
    it("fails, naming the store, instead of returning the first page as everything there is", async () => {
        const t = new S3Target({ bucket: "b", prefix: "p", endpoint: "http://127.0.0.1:9", forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "x", secretAccessKey: "y" } });
        const pages = [{ IsTruncated: true, NextContinuationToken: undefined, Contents: [{ Key: "p/db/db-20260101-000000-aaaaaa.dump", Size: 1 }] }];
        (t as unknown as { client: { send: () => Promise<unknown> } }).client = { send: async () => pages.shift() };
        await expect(t.list("db/")).rejects.toThrow(/listing s3:\/\/b\/p\/db\/ stopped half-way: the server says there is more but gives no continuation token/);
    });
});
