/**
 * One memory budget for every target's upload buffers: the plan (pure), and the part buffering
 * that keeps to it (parts cut into a bounded set of reused buffers, never one per part).
 */
import { constants } from "buffer";
import { createHash, randomBytes } from "crypto";
import { describe, expect, it } from "vitest";
import { AZURE_BLOCK_LIMITS } from "../../jobs/src/targets/azure";
import { growthCeiling, Part, partedStream, partSizeFor, queueFor } from "../../jobs/src/targets/parts";
import { S3_PART_LIMITS } from "../../jobs/src/targets/s3";
import { loadSettings } from "../../jobs/src/settings";
import { BudgetError, planUploads, UploadBudget, WRITE_BUFFER } from "../../jobs/src/uploadBudget";

const MIB = 1024 * 1024;
const S3 = { kind: "s3", limits: S3_PART_LIMITS, maxConcurrency: 4 };
const AZURE = { kind: "azure", limits: AZURE_BLOCK_LIMITS, maxConcurrency: 4 };
const total = (plans: Map<string, { bufferBytes: number }>) => [...plans.values()].reduce((s, p) => s + p.bufferBytes, 0);

describe("the upload plan: part sizes first, then parts in flight within the budget", () => {
    it("a 64 MiB budget with S3 and Azure: smallest parts, four in flight each, within budget", () => {
        const plans = planUploads(64 * MIB, 2 * 1024 ** 3, [S3, AZURE]);
        expect(plans.get("s3")).toEqual({ chunkBytes: 5 * MIB, concurrency: 4, bufferBytes: 5 * MIB * 5 + WRITE_BUFFER });
        expect(plans.get("azure")).toEqual({ chunkBytes: 4 * MIB, concurrency: 4, bufferBytes: 4 * MIB * 5 + WRITE_BUFFER });
        expect(total(plans)).toBeLessThanOrEqual(64 * MIB);
    });

    it("the smallest budget the setting accepts holds S3 and Azure at once; below it the setting refuses (every backup would fail at its start)", () => {
        const lowest = [1, 8, 16, 19, 20, 21].filter((mib) => loadSettings({ BACKUP_LOCAL_DIR: "/b", BACKUP_MEMORY_BUDGET_MIB: String(mib) }).ok)[0];
        expect(lowest).toBe(20);
        expect(total(planUploads(lowest * MIB, 10 * 1024 ** 3, [S3, AZURE]))).toBeLessThanOrEqual(lowest * MIB);
        expect(() => planUploads((lowest - 1) * MIB, 10 * 1024 ** 3, [S3, AZURE])).toThrow(BudgetError);
        const refused = loadSettings({ BACKUP_LOCAL_DIR: "/b", BACKUP_MEMORY_BUDGET_MIB: "16" });
        expect(!refused.ok && refused.errors.join()).toMatch(/BACKUP_MEMORY_BUDGET_MIB="16" is not allowed: expected a whole number from 20 to 4096/);
    });

    it("the default budget (32 MiB) gives everyone a second part in flight before anyone a third", () => {
        const loaded = loadSettings({ BACKUP_LOCAL_DIR: "/backups" });
        expect(loaded.ok && loaded.settings.memoryBudgetMiB).toBe(32);
        const plans = planUploads(32 * MIB, 1024 ** 3, [S3, AZURE]);
        expect(plans.get("s3")!.concurrency).toBe(2);
        expect(plans.get("azure")!.concurrency).toBe(2);
        expect(total(plans)).toBeLessThanOrEqual(32 * MIB);
        // One target alone gets the whole budget.
        expect(planUploads(32 * MIB, 1024 ** 3, [S3]).get("s3")!.concurrency).toBe(4);
    });

    it("parts grow with the database so the part limits hold; the budget never shrinks them", () => {
        const fiveTB = 5 * 1024 ** 4;
        const plans = planUploads(4096 * MIB, fiveTB, [S3, AZURE]);
        expect(Math.ceil((2 * fiveTB) / plans.get("s3")!.chunkBytes)).toBeLessThanOrEqual(10_000);
        expect(Math.ceil((2 * fiveTB) / plans.get("azure")!.chunkBytes)).toBeLessThanOrEqual(50_000);
        expect(total(plans)).toBeLessThanOrEqual(4096 * MIB);
    });

    it("refuses, before any upload starts, a budget that cannot hold one part in flight each, saying what to set", () => {
        const fiveTB = 5 * 1024 ** 4;
        expect(() => planUploads(64 * MIB, fiveTB, [S3, AZURE])).toThrow(BudgetError);
        expect(() => planUploads(64 * MIB, fiveTB, [S3, AZURE])).toThrow(/s3: 1049 MiB parts, azure: 210 MiB parts .* more than BACKUP_MEMORY_BUDGET_MIB=64\. Set BACKUP_MEMORY_BUDGET_MIB to at least 2520/);
        // Exactly the minimum is enough.
        expect(planUploads(2520 * MIB, fiveTB, [S3, AZURE]).get("s3")!.concurrency).toBe(1);
    });

    it("the budget object: each target asks for its share of the joint plan", () => {
        const budget = new UploadBudget(32 * MIB);
        budget.join(S3);
        budget.join(AZURE);
        expect(budget.plan("s3", 1024 ** 3)).toEqual(planUploads(32 * MIB, 1024 ** 3, [S3, AZURE]).get("s3"));
        expect(budget.plan("azure", 1024 ** 3).concurrency).toBe(2);
    });
});

describe("part buffers: a bounded set, reused", () => {
    it("cuts the stream into parts of the exact bytes, with at most queueSize buffers however many parts", async () => {
        const data = randomBytes(23 * MIB + 12345);
        const partSize = 2 * MIB;
        const seen: { number: number; sha: string; md5ok: boolean }[] = [];
        const buffers = new Set<ArrayBuffer>();
        let inFlight = 0;
        let maxInFlight = 0;
        const send = async (p: Part) => {
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            buffers.add(p.body.buffer as ArrayBuffer);
            seen.push({ number: p.number, sha: createHash("sha256").update(p.body).digest("hex"), md5ok: createHash("md5").update(p.body).digest().equals(p.digest) });
            await new Promise((r) => setTimeout(r, 5));
            inFlight--;
        };
        const stream = partedStream(partSize, 3, send, { digest: "md5", wholeMd5: true });
        for (let i = 0; i < data.length; i += 65536) {
            if (!stream.sink.write(data.subarray(i, i + 65536))) {
                await new Promise((r) => stream.sink.once("drain", r));
            }
        }
        stream.sink.end();
        await stream.staged;
        expect(seen.length).toBe(Math.ceil(data.length / partSize));
        expect(maxInFlight).toBeLessThanOrEqual(3);
        expect(buffers.size).toBeLessThanOrEqual(3);
        const byNumber = [...seen].sort((a, b) => a.number - b.number);
        byNumber.forEach((p, i) => {
            expect(p.sha, `part ${p.number}`).toBe(createHash("sha256").update(data.subarray(i * partSize, (i + 1) * partSize)).digest("hex"));
            expect(p.md5ok).toBe(true);
        });
        expect(stream.wholeMd5()).toBe(createHash("md5").update(data).digest("base64"));
    });

    it("gives each part the one digest asked for, of its own bytes, and no whole-stream MD5 unless asked", async () => {
        const data = randomBytes(3 * MIB + 5);
        const parts: Part[] = [];
        const stream = partedStream(MIB, 2, async (p) => void parts.push({ ...p, body: Buffer.from(p.body) }), { digest: "sha256" });
        stream.sink.end(data);
        await stream.staged;
        expect(parts.length).toBe(4);
        for (const p of parts) {
            expect(p.digest.equals(createHash("sha256").update(data.subarray((p.number - 1) * MIB, p.number * MIB)).digest()), `part ${p.number}`).toBe(true);
        }
        expect(() => stream.wholeMd5()).toThrow(/not asked for/);
    });
});

describe("parts grow when a stream outgrows its plan, instead of failing at the store's part limit", () => {
    const S3 = { maxParts: 10_000, max: 5 * 1024 * MIB };

    it("keeps the planned size for the first half of the allowance, then doubles per halving band, up to the largest part", () => {
        expect(partSizeFor(1, 5 * MIB, S3)).toBe(5 * MIB);
        expect(partSizeFor(5_000, 5 * MIB, S3)).toBe(5 * MIB);
        expect(partSizeFor(5_001, 5 * MIB, S3)).toBe(10 * MIB);
        expect(partSizeFor(7_500, 5 * MIB, S3)).toBe(10 * MIB);
        expect(partSizeFor(7_501, 5 * MIB, S3)).toBe(20 * MIB);
        expect(partSizeFor(10_000, 5 * MIB, S3)).toBe(Math.min(5 * 1024 * MIB, constants.MAX_LENGTH));
        expect(partSizeFor(9_000, 3 * 1024 * MIB, S3)).toBe(Math.min(5 * 1024 * MIB, constants.MAX_LENGTH));
        // What 10,000 parts then hold from 5 MiB parts: far beyond the planned 25 GB, never less.
        let total = 0;
        for (let n = 1; n <= S3.maxParts; n++) {
            total += partSizeFor(n, 5 * MIB, S3);
        }
        expect(total / 1024 ** 3).toBeGreaterThan(200);
    });

    it("keeps the bytes held within the plan where it can: fewer parts in flight as they grow, never none", () => {
        expect(queueFor(5 * MIB, 5 * MIB, 3)).toBe(3);
        expect(queueFor(10 * MIB, 5 * MIB, 3)).toBe(1);
        expect(queueFor(10 * MIB, 5 * MIB, 1)).toBe(1);
        expect(queueFor(40 * MIB, 5 * MIB, 7)).toBe(1);
    });

    it("cuts a stream four times its plan into the allowed parts, whole and in order, and says so once per growth", async () => {
        const data = randomBytes(15 * MIB + 3);
        const parts: Part[] = [];
        const grown: number[] = [];
        const stream = partedStream(MIB, 2, async (p) => void parts.push({ ...p, body: Buffer.from(p.body) }), {
            digest: "sha256", limits: { maxParts: 8, max: 8 * MIB }, onGrow: (size) => grown.push(size),
        });
        for (let i = 0; i < data.length; i += 65536) {
            if (!stream.sink.write(data.subarray(i, i + 65536))) {
                await new Promise((r) => stream.sink.once("drain", r));
            }
        }
        stream.sink.end();
        await stream.staged;
        parts.sort((a, b) => a.number - b.number);
        expect(parts.map((p) => p.body.length / MIB)).toEqual([1, 1, 1, 1, 2, 2, 4, 3 + 3 / MIB]);
        expect(Buffer.concat(parts.map((p) => p.body)).equals(data)).toBe(true);
        expect(grown).toEqual([2 * MIB, 4 * MIB, 8 * MIB]);
        for (const p of parts) {
            expect(p.digest.equals(createHash("sha256").update(p.body).digest()), `part ${p.number}`).toBe(true);
        }
    });

    it("never grows past the memory ceiling: a stream beyond it fails cleanly at the part limit, naming the setting to raise", async () => {
        expect(growthCeiling(5 * MIB, 3)).toBe(80 * MIB);
        const sizes: number[] = [];
        const grown: number[] = [];
        const limits = { maxParts: 4, max: 64 * MIB };
        const capped = partedStream(MIB, 1, async (p) => void sizes.push(p.body.length), { digest: "md5", limits, maxHeldBytes: 4 * MIB, onGrow: (s) => grown.push(s) });
        capped.sink.on("error", () => undefined);
        capped.sink.end(randomBytes(7 * MIB));
        await expect(capped.staged).rejects.toThrow(/outgrew the store's limit of 4 parts \(of at most 2 MiB, as large as the memory ceiling of 4 MiB allows\): raise BACKUP_MEMORY_BUDGET_MIB/);
        expect(sizes).toEqual([MIB, MIB, 2 * MIB, 2 * MIB]);
        expect(grown).toEqual([2 * MIB]);
    });

    it("fails, saying why, a stream that outgrows even the largest parts; one that fills the last part exactly passes", async () => {
        const limits = { maxParts: 4, max: 2 * MIB };
        const tooBig = partedStream(MIB, 1, async () => undefined, { digest: "md5", limits });
        tooBig.sink.on("error", () => undefined);
        tooBig.sink.end(randomBytes(7 * MIB + 1));
        await expect(tooBig.staged).rejects.toThrow(/outgrew the store's limit of 4 parts \(of at most 2 MiB\)/);

        const exact: number[] = [];
        const fits = partedStream(MIB, 1, async (p) => void exact.push(p.body.length), { digest: "md5", limits });
        fits.sink.end(randomBytes(6 * MIB));
        await fits.staged;
        expect(exact).toEqual([MIB, MIB, 2 * MIB, 2 * MIB]);
    });
});

describe("parts never grow past what a Node Buffer can hold", () => {
    it("S3's 5 GiB part is more than one Buffer (4 GiB on Node 20): the schedule stops at the largest buffer instead of failing with a RangeError", () => {
        for (const n of [9_000, 9_990, 10_000]) {
            expect(partSizeFor(n, 5 * MIB, S3_PART_LIMITS)).toBeLessThanOrEqual(constants.MAX_LENGTH);
        }
        expect(partSizeFor(1, S3_PART_LIMITS.max, S3_PART_LIMITS)).toBeLessThanOrEqual(constants.MAX_LENGTH);
        // The premise: one byte more is refused before anything is allocated.
        expect(() => Buffer.allocUnsafeSlow(constants.MAX_LENGTH + 1)).toThrow(RangeError);
    });
});
