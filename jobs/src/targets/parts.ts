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

export interface PartedOptions {
    /** Hold back a stream that fits in one part (see `single()`). */
    holdSingle?: boolean;
    /** The digest each part carries. */
    digest: PartDigest;
    /** Compute the MD5 of the whole stream (Azure stores it on the blob). */
    wholeMd5?: boolean;
}

/**
 * Cuts what is written into `partSize` parts and calls `send` for each. With `holdSingle`, a
 * stream that fits in the first part is not sent: `single()` returns it (S3 stores it with one
 * PutObject at commit). A failing `send` fails the sink.
 */
export function partedStream(partSize: number, queueSize: number, send: (p: Part) => Promise<void>, o: PartedOptions): PartedStream {
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
        const part: Part = { number: next++, body, digest: digestOf(body, o.digest) };
        const p = send(part).finally(() => {
            inFlight.delete(p);
            free.push(Buffer.from(body.buffer, body.byteOffset, partSize));
        });
        inFlight.add(p);
        // A failed part fails the sink at once, even while the producer is quiet.
        p.catch((e) => sink.destroy(e));
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
                while (pendingBytes >= partSize) {
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
