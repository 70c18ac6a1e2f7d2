/**
 * The part/block buffering shared by the S3 and Azure uploads: a Writable that cuts the stream
 * into fixed-size parts, hands each to `send` with its checksum (computed on the buffered part,
 * so every request carries it in a header: no streamed trailing checksums), keeps at most
 * `queueSize` in flight (backpressure beyond that), and tells apart a stream that fits in one
 * part (stored with a single request at commit) from a multipart one.
 *
 * Each digest is a pass over every byte on the main thread, so a part gets exactly one: the one
 * its store checks. S3 takes SHA-256 (x-amz-checksum-sha256, which satisfies Object Lock, and the
 * same digest signs the payload: x-amz-content-sha256); Azure takes MD5 (transactional MD5).
 */
import { constants } from "buffer";
import { createHash } from "crypto";
import { Writable } from "stream";
import { finished } from "stream/promises";

export type PartDigest = "md5" | "sha256";

export interface Part {
    /** 1-based. */
    number: number;
    body: Buffer;
    /** The part's digest, of the kind the stream was asked for. */
    digest: Buffer;
}

export interface PartedStream {
    sink: Writable;
    /** Resolves once the stream ended and every part is sent; rejects on the first failure. */
    staged: Promise<void>;
    /** After `staged`: the whole stream when it fit in one part and nothing was sent. */
    single(): Part | undefined;
    /** base64 MD5 of everything written (Azure's whole-blob Content-MD5). */
    wholeMd5(): string;
}

export function digestOf(body: Buffer, kind: PartDigest): Buffer {
    return createHash(kind).update(body).digest();
}

export interface PartLimits {
    /** The store's part count limit (S3 10,000; Azure 50,000 blocks). */
    maxParts: number;
    /** The store's largest part. */
    max: number;
}

/**
 * The size of part `n` (1-based) of a stream planned in `base`-byte parts: `base` for the first
 * half of the store's part allowance, twice that for the next quarter, four times for the next
 * eighth, and so on up to the store's largest part. Each band holds maxParts/2 × base bytes, so a
 * stream within its plan (base is sized for twice the expected bytes) never grows, and one that
 * turns out far larger than estimated (a plain dump of hex-encoded bytea, a database grown since
 * its size was read) keeps going, instead of failing at the store's part limit at the very end of
 * a long run. Pure.
 */
export function partSizeFor(n: number, base: number, limits: PartLimits): number {
    const max = largestPart(limits);
    let size = base;
    let band = Math.floor(limits.maxParts / 2);
    let bandEnd = band;
    while (n > bandEnd && size < max) {
        size *= 2;
        band = Math.max(1, Math.floor(band / 2));
        bandEnd += band;
    }
    return Math.min(size, max);
}

/**
 * The store's largest part, or the largest Buffer this Node can allocate when that is smaller
 * (4 GiB on Node 20, below S3's 5 GiB): a part is one buffer, and allocating more fails with a
 * RangeError that says nothing about parts. Pure.
 */
function largestPart(limits: PartLimits): number {
    return Math.min(limits.max, constants.MAX_LENGTH);
}

/**
 * Parts in flight at part size `size`, so the parts held (in flight and filling) stay within what
 * the plan gave: `base` × (queueSize + 1). At least one. Pure.
 */
export function queueFor(size: number, base: number, queueSize: number): number {
    return Math.max(1, Math.min(queueSize, Math.floor((base * (queueSize + 1)) / size) - 1));
}

/**
 * How far grown parts may hold more than the plan gave: four times its bytes. A dump up to about
 * four times its part allowance's planned size then still completes (S3 from 5 MiB parts: about
 * 100 GiB instead of 50), and one larger fails cleanly at the part limit, naming the setting to
 * raise, rather than growing until the pod is killed for memory. Pure.
 */
export function growthCeiling(base: number, plannedQueue: number): number {
    return 4 * base * (plannedQueue + 1);
}

export interface PartedOptions {
    /** Hold back a stream that fits in one part (see `single()`). */
    holdSingle?: boolean;
    /** The digest each part carries. */
    digest: PartDigest;
    /** Compute the MD5 of the whole stream (Azure stores it on the blob). */
    wholeMd5?: boolean;
    /** Grow parts past the store's half allowance (partSizeFor); without it every part is `partSize`. */
    limits?: PartLimits;
    /** Told when parts grow: the new size, and the bytes held beyond the plan (0 when within it). */
    onGrow?: (size: number, overPlan: number) => void;
    /** Parts never grow so that those held (in flight and filling) exceed this. */
    maxHeldBytes?: number;
}

/**
 * Cuts what is written into `base`-byte parts (growing past half the store's allowance: see
 * partSizeFor) and calls `send` for each. With `holdSingle`, a stream that fits in the first part
 * is not sent: `single()` returns it (S3 stores it with one PutObject at commit). A failing `send`
 * fails the sink; so does a stream that would need more parts than the store allows.
 */
export function partedStream(base: number, plannedQueue: number, send: (p: Part) => Promise<void>, o: PartedOptions): PartedStream {
    let partSize = o.limits ? Math.min(base, largestPart(o.limits)) : base;
    let queueSize = plannedQueue;
    const heldCeiling = o.maxHeldBytes ?? Number.POSITIVE_INFINITY;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let next = 1;
    let single: Part | undefined;
    const inFlight = new Set<Promise<void>>();
    const md5 = o.wholeMd5 ? createHash("md5") : undefined;

    // Parts are cut into reused buffers: no more than `queueSize` exist (a buffer returns once its
    // part is sent), so what a target holds is bounded by its plan (uploadBudget.ts) and a part
    // never becomes garbage waiting for the collector.
    const free: Buffer[] = [];
    const take = (bytes: number): Buffer => {
        const out = free.pop() ?? Buffer.allocUnsafeSlow(partSize);
        for (let filled = 0; filled < bytes; ) {
            const chunk = pending[0];
            const n = Math.min(chunk.length, bytes - filled);
            chunk.copy(out, filled, 0, n);
            filled += n;
            if (n === chunk.length) {
                pending.shift();
            } else {
                pending[0] = chunk.subarray(n);
            }
        }
        pendingBytes -= bytes;
        return out.subarray(0, bytes);
    };
    const start = (body: Buffer): void => {
        if (o.limits && next > o.limits.maxParts) {
            const capped = partSize < largestPart(o.limits);
            throw new Error(`the stream outgrew the store's limit of ${o.limits.maxParts} parts (of at most ${partSize / 1024 ** 2} MiB` +
                (capped ? `, as large as the memory ceiling of ${Math.floor(heldCeiling / 1024 ** 2)} MiB allows): raise BACKUP_MEMORY_BUDGET_MIB (parts can then grow further)` : ")"));
        }
        const part: Part = { number: next++, body, digest: digestOf(body, o.digest) };
        const p = send(part).finally(() => {
            inFlight.delete(p);
            // Buffers of an earlier, smaller part size are left to the collector.
            if (body.buffer.byteLength === partSize) {
                free.push(Buffer.from(body.buffer, body.byteOffset, partSize));
            }
        });
        inFlight.add(p);
        // A failed part fails the sink at once, even while the producer is quiet.
        p.catch((e) => sink.destroy(e));
    };
    /** Before cutting part `next`: its size, by the schedule; fewer in flight when parts grow. */
    const resize = (): void => {
        if (!o.limits) {
            return;
        }
        const size = partSizeFor(next, base, o.limits);
        // Never past the memory ceiling: the stream then fails cleanly at the part limit, saying
        // what to raise, instead of the job being killed for memory with its upload half-staged.
        if (size !== partSize && size * (queueFor(size, base, plannedQueue) + 1) <= heldCeiling) {
            partSize = size;
            queueSize = queueFor(size, base, plannedQueue);
            free.length = 0;
            o.onGrow?.(size, Math.max(0, size * (queueSize + 1) - base * (plannedQueue + 1)));
        }
    };
    const room = async (): Promise<void> => {
        while (inFlight.size >= queueSize) {
            await Promise.race(inFlight);
        }
    };

    const sink = new Writable({
        highWaterMark: 1024 * 1024,
        write(chunk: Buffer, _enc, cb) {
            md5?.update(chunk);
            pending.push(chunk);
            pendingBytes += chunk.length;
            (async () => {
                for (resize(); pendingBytes >= partSize; resize()) {
                    // The first part is held back until a second exists: a small stream is then stored whole.
                    if (o.holdSingle && next === 1 && pendingBytes === partSize) {
                        return;
                    }
                    await room();
                    start(take(partSize));
                }
            })().then(() => cb(), cb);
        },
        final(cb) {
            (async () => {
                if (o.holdSingle && next === 1) {
                    const body = take(pendingBytes);
                    single = { number: 1, body, digest: digestOf(body, o.digest) };
                } else if (pendingBytes > 0) {
                    await room();
                    start(take(pendingBytes));
                }
                await Promise.all(inFlight);
            })().then(() => cb(), cb);
        },
    });
    const staged = finished(sink);
    staged.catch(() => undefined);
    let whole: string | undefined;
    return {
        sink,
        staged,
        single: () => single,
        wholeMd5: () => {
            if (!md5) {
                throw new Error("partedStream: wholeMd5 was not asked for");
            }
            return (whole ??= md5.digest("base64"));
        },
    };
}
