/** One contract, three targets: local directory, S3 (s3rver) and Azure Blob (azurite). */
import { createHash, randomBytes } from "crypto";
import { mkdtempSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AzureEmulator, S3Emulator, startAzurite, startS3 } from "../../jobs/dev/services";
import { chunkSize, LocalTarget, readText, Target } from "../../jobs/src/targets";
import { AZURE_BLOCK_LIMITS, AzureTarget } from "../../jobs/src/targets/azure";
import { S3_PART_LIMITS, S3Target } from "../../jobs/src/targets/s3";

const MIB = 1024 * 1024;

async function writeAll(sink: NodeJS.WritableStream, data: Buffer, chunk = 256 * 1024): Promise<void> {
    for (let i = 0; i < data.length; i += chunk) {
        if (!sink.write(data.subarray(i, i + chunk))) {
            await new Promise((r) => sink.once("drain", r));
        }
    }
    sink.end();
}

async function sha(stream: NodeJS.ReadableStream): Promise<string> {
    const h = createHash("sha256");
    for await (const c of stream) {
        h.update(c as Buffer);
    }
    return h.digest("hex");
}

let s3: S3Emulator;
let azure: AzureEmulator;
let localRoot: string;

beforeAll(async () => {
    [s3, azure] = await Promise.all([startS3(), startAzurite()]);
    localRoot = mkdtempSync(path.join(os.tmpdir(), "kx-local-"));
}, 60_000);

afterAll(async () => {
    await Promise.all([s3?.stop(), azure?.stop()]);
    rmSync(localRoot, { recursive: true, force: true });
});

const makers: [string, () => Target][] = [
    ["local", () => new LocalTarget(localRoot)],
    ["s3", () => new S3Target({ bucket: s3.bucket, prefix: "krystalinex", endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } })],
    ["azure", () => new AzureTarget({ container: azure.container, prefix: "krystalinex", connectionString: azure.connectionString })],
];

describe.each(makers)("%s target", (kind, make) => {
    it("stores a streamed object (several parts) and gives back the same bytes", async () => {
        const t = make();
        const data = randomBytes(20 * MIB + 12345);
        const up = t.upload("db1/db1-20260101-000000.dump", 0);
        await Promise.all([writeAll(up.sink, data), up.done()]);
        const listed = await t.list("db1/");
        expect(listed.map((o) => [o.key, o.size])).toEqual([["db1/db1-20260101-000000.dump", data.length]]);
        expect(listed[0].lastModified.getTime()).toBeGreaterThan(Date.now() - 60_000);
        expect(await sha(await t.get("db1/db1-20260101-000000.dump"))).toBe(createHash("sha256").update(data).digest("hex"));
    });

    it("stores small objects whole and lists only the asked prefix", async () => {
        const t = make();
        await t.putSmall("db2/a.manifest.json", '{"ok":true}');
        await t.putSmall("db22/b.manifest.json", "{}");
        expect(await readText(t, "db2/a.manifest.json")).toBe('{"ok":true}');
        expect((await t.list("db2/")).map((o) => o.key)).toEqual(["db2/a.manifest.json"]);
    });

    it("leaves nothing behind when an upload is aborted midway", async () => {
        const t = make();
        const up = t.upload("db3/db3-20260101-000000.dump", 0);
        up.sink.write(randomBytes(9 * MIB));
        await new Promise((r) => setTimeout(r, 300));
        await up.abort(new Error("test"));
        await expect(up.done()).rejects.toBeDefined();
        expect(await t.list("db3/")).toEqual([]);
    });

    it("removes a completed object when the backup it belongs to is abandoned", async () => {
        const t = make();
        const up = t.upload("db4/db4-20260101-000000.dump", 0);
        await Promise.all([writeAll(up.sink, randomBytes(MIB)), up.done()]);
        await up.abort();
        expect(await t.list("db4/")).toEqual([]);
    });

    it("deletes, and deleting a missing key is not an error", async () => {
        const t = make();
        await t.putSmall("db5/x.json", "1");
        await t.delete("db5/x.json");
        await t.delete("db5/never-existed.json");
        expect(await t.list("db5/")).toEqual([]);
    });

    it("fails to get a missing key", async () => {
        await expect(make().get("nope/nothing.dump")).rejects.toBeDefined();
    });

    it(`reports where it is (${kind})`, () => {
        expect(make().location).toMatch(kind === "local" ? /^file:\/\// : kind === "s3" ? /^s3:\/\/backups\/krystalinex$/ : /^azure:\/\/devstoreaccount1\/backups\/krystalinex$/);
    });
});

describe("chunk sizes", () => {
    it("keeps small dumps at the minimum part size (flat memory)", () => {
        expect(chunkSize(2 * 1024 * MIB, S3_PART_LIMITS)).toBe(5 * MIB);
        expect(chunkSize(0, AZURE_BLOCK_LIMITS)).toBe(8 * MIB);
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
