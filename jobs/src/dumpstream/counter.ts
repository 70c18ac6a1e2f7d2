/**
 * Counting a dump as the job streams it, without holding up the uploads: `tap()` passes every
 * byte on unchanged and copies it to a worker thread that reads the dump (see worker.ts). At most
 * `maxInFlight` bytes wait for the worker; beyond that the tap holds the stream back, the same
 * backpressure the targets apply, so memory stays bounded when the worker falls behind.
 *
 * With `recompress` (an uncompressed custom-format dump in, see recompress.ts), the stream to
 * upload is the worker's: the archive it rebuilds, zlib-compressed on several threads, in order.
 */
import { Readable, Transform } from "stream";
import { Worker } from "worker_threads";
import { GcPacer } from "../gcpacer";
import { DumpCounts, DumpFormat } from "./counts";
import { workerSource } from "./workersource";

/**
 * Copies what it is given into `size`-byte buffers from `fresh`, handing each on (`emit`) once
 * full, and the last, part-filled one at `flush()`.
 */
function batcher<B extends Uint8Array>(size: number, fresh: () => B, emit: (buffer: B, length: number) => void): { add(chunk: Uint8Array): void; flush(): void } {
    let buffer = fresh();
    let filled = 0;
    const hand = () => {
        emit(buffer, filled);
        buffer = fresh();
        filled = 0;
    };
    return {
        add(chunk) {
            for (let at = 0; at < chunk.length; ) {
                const n = Math.min(size - filled, chunk.length - at);
                buffer.set(chunk.subarray(at, at + n), filled);
                filled += n;
                at += n;
                if (filled === size) {
                    hand();
                }
            }
        },
        flush() {
            if (filled > 0) {
                hand();
            }
        },
    };
}

/** Why counting failed; `atEnd`: found when the stream ended (a cut-short dump), not mid-way. */
export class DumpStreamError extends Error {
    constructor(message: string, readonly atEnd: boolean) {
        super(message);
    }
}

/** Bytes per message to the worker. */
const BATCH = 512 * 1024;
/** Bytes per buffer passed on to the targets. */
const OUTPUT = 1024 * 1024;

/** The rebuilt archive waiting to be read downstream before the dump is held back (its high-water mark). */
const OUTPUT_HELD = OUTPUT;

type FromWorker =
    | { type: "ack"; data: ArrayBuffer }
    | { type: "out"; data: Uint8Array }
    | { type: "done"; counts: DumpCounts }
    | { type: "error"; message: string; atEnd: boolean };

export interface RecompressSettings {
    /** zlib level: -1 (zlib's default, 6, as pg_dump) or 1 to 9. */
    level: number;
    /** Pieces deflated at once (on libuv's thread pool). */
    threads: number;
}

export class DumpStreamCounter {
    private readonly worker: Worker;
    private readonly outcome: Promise<DumpCounts>;
    private inFlight = 0;
    /** Batch buffers back from the worker, for reuse: at most maxInFlight / BATCH + 1 ever exist. */
    private readonly free: ArrayBuffer[] = [];
    private held: (() => void) | undefined;
    private settled = false;
    /** Recompressing: where the rebuilt archive goes, as the worker sends it back. */
    private output: { push(chunk: Buffer | null): void } | undefined;
    private outputFailure: ((e: DumpStreamError) => void) | undefined;
    /** Recompressing: resumes the dump once the worker and the output have room again. */
    private onRoom: (() => void) | undefined;

    /**
     * `maxInFlight`: bytes the worker may hold before the dump is held back; `outputHeld`
     * (recompressing): the rebuilt archive's high-water mark downstream.
     */
    constructor(format: DumpFormat, private readonly o: { maxInFlight?: number; outputHeld?: number; recompress?: RecompressSettings } = {}) {
        if (o.recompress && format !== "custom") {
            throw new Error(`only a custom-format dump can be recompressed, not ${format}`);
        }
        this.worker = new Worker(workerSource(), {
            eval: true,
            workerData: { format, recompress: o.recompress },
            // Its allocations are Buffers (outside the V8 heap): a small young generation keeps its RSS small.
            resourceLimits: { maxYoungGenerationSizeMb: 4 },
            stdout: false,
            stderr: false,
        });
        this.outcome = new Promise<DumpCounts>((resolve, reject) => {
            const settle = (fn: () => void) => {
                if (!this.settled) {
                    this.settled = true;
                    fn();
                }
                this.release();
            };
            this.worker.on("message", (m: FromWorker) => {
                if (m.type === "ack") {
                    this.inFlight -= BATCH;
                    this.free.push(m.data);
                    if (this.inFlight <= this.maxInFlight / 2) {
                        this.release();
                    }
                } else if (m.type === "out") {
                    this.output?.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
                } else if (m.type === "done") {
                    settle(() => resolve(m.counts));
                    this.output?.push(null);
                } else {
                    const e = new DumpStreamError(m.message, m.atEnd);
                    settle(() => reject(e));
                    this.outputFailure?.(e);
                }
            });
            const stopped = (e: DumpStreamError) => {
                settle(() => reject(e));
                this.outputFailure?.(e);
            };
            this.worker.once("error", (e) => stopped(new DumpStreamError(`counting the dump failed: ${e.message}`, false)));
            this.worker.once("exit", (code) => stopped(new DumpStreamError(`the dump-counting worker stopped (exit ${code}) before it finished`, false)));
        });
        this.outcome.catch(() => undefined);
    }

    private get maxInFlight(): number {
        return this.o.maxInFlight ?? 4 * 1024 * 1024;
    }

    private release(): void {
        const held = this.held;
        this.held = undefined;
        held?.();
        this.onRoom?.();
    }

    /**
     * The stream to upload: `source`'s bytes, unchanged, each also counted — or, recompressing,
     * the archive rebuilt from them. `producerExited` (recompressing): settles when the process
     * writing `source` has exited; a dump found cut short fails the stream only then, so that
     * process's own failure, which says why, comes first.
     */
    tap(source: Readable, producerExited?: Promise<unknown>): Readable {
        return this.o.recompress ? this.rebuilt(source, producerExited) : this.passThrough(source);
    }

    /** Batches what it is given for the worker (BATCH bytes per message, buffers transferred and reused). */
    private toWorker() {
        return batcher(BATCH, () => new Uint8Array(this.free.pop() ?? new ArrayBuffer(BATCH)), (batch, length) => {
            this.worker.postMessage({ type: "chunk", data: batch.buffer, length }, [batch.buffer]);
            this.inFlight += BATCH;
        });
    }

    private rebuilt(source: Readable, producerExited?: Promise<unknown>): Readable {
        // Rebuilding, the dump comes uncompressed (about 2.5 times the bytes, in 64 KiB reads) and the
        // rebuilt archive's 1 MiB buffers wait downstream long enough to be promoted: a young
        // collection every 4 MiB and a full one every 16 MiB keep that garbage from piling up. Against
        // every 16 and 64 MiB (as passing through), with 1 MiB held instead of 2: peak RSS 148 MiB
        // against 155-163 under the image's node flags, same wall time and CPU (a 620 MiB database,
        // three targets, three runs each). At 2.4 GiB the full collections cost about 5 s of wall and
        // 7-10 % CPU for 3-5 MiB of peak (BENCHMARKS.md, run L): the price of the 150 MiB goal.
        const pacer = new GcPacer(4 * 1024 * 1024, 16 * 1024 * 1024);
        const toWorker = this.toWorker();
        let paused = false;
        // Whether downstream wants more: false once a push fills the output to its mark, true again
        // when it asks (read). Not out.readableLength: Node asks (read) only once per push, and
        // a request that came while the worker was still busy must not be forgotten.
        let demand = true;
        const resume = () => {
            if (paused && demand && !out.destroyed && this.inFlight <= this.maxInFlight / 2) {
                paused = false;
                source.resume();
            }
        };
        const out = new Readable({
            highWaterMark: this.o.outputHeld ?? OUTPUT_HELD,
            read: () => {
                demand = true;
                resume();
            },
            destroy: (e, done) => {
                source.destroy();
                done(e);
            },
        });
        this.output = {
            push: (chunk) => {
                if (chunk) {
                    pacer.add(chunk.length);
                }
                demand = out.push(chunk);
            },
        };
        this.onRoom = resume;
        this.outputFailure = (e) => {
            const fail = () => out.destroy(e);
            if (e.atEnd && producerExited) {
                void producerExited.then(fail, fail);
            } else {
                fail();
            }
        };
        source.on("data", (chunk: Buffer) => {
            pacer.add(chunk.length);
            if (this.settled) {
                return;
            }
            toWorker.add(chunk);
            if (this.inFlight > this.maxInFlight || !demand) {
                paused = true;
                source.pause();
            }
        });
        source.once("end", () => {
            if (!this.settled) {
                toWorker.flush();
                this.worker.postMessage({ type: "end" });
            }
        });
        source.once("error", (e) => out.destroy(e));
        return out;
    }

    private passThrough(source: Readable): Readable {
        const worker = this.worker;
        // Every chunk, the copy in the batch for the worker and the one in the 1 MiB buffers passed
        // on are garbage once used: see gcpacer.ts.
        const pacer = new GcPacer(16 * 1024 * 1024, 64 * 1024 * 1024);
        // Bytes go to the worker in batches (one message per BATCH bytes, not per pipe read), in
        // buffers transferred there and back: owned by one thread at a time, never allocated anew.
        const toWorker = this.toWorker();
        // Downstream gets the bytes in OUTPUT-sized buffers, not as the pipe's 64 KiB reads: every
        // chunk costs each target's stream machinery and the local file a write of its own.
        const onward = batcher(OUTPUT, () => Buffer.allocUnsafeSlow(OUTPUT), (out, length) => {
            tap.push(length === OUTPUT ? out : out.subarray(0, length));
        });
        const tap = new Transform({
            transform: (chunk: Buffer, _enc, done) => {
                onward.add(chunk);
                pacer.add(chunk.length * 3);
                if (this.settled) {
                    // Counting already failed (and says so): the bytes still flow, so the failure is reported once, cleanly.
                    done();
                    return;
                }
                toWorker.add(chunk);
                if (this.inFlight > this.maxInFlight) {
                    this.held = () => done();
                } else {
                    done();
                }
            },
            flush: (done) => {
                onward.flush();
                if (!this.settled) {
                    toWorker.flush();
                    worker.postMessage({ type: "end" });
                }
                done();
            },
        });
        source.once("error", (e) => tap.destroy(e));
        source.pipe(tap);
        return tap;
    }

    /**
     * The counts, once the stream has ended and been read whole. `producerExited` settles when
     * the process writing the dump has exited: when the dump turns out to be cut short, that
     * process's own failure (which says why) is left to be reported first.
     */
    async result(producerExited?: Promise<unknown>): Promise<DumpCounts> {
        try {
            return await this.outcome;
        } catch (e) {
            if (e instanceof DumpStreamError && e.atEnd && producerExited) {
                await producerExited.catch(() => undefined);
            }
            throw e;
        }
    }

    /** Stops the worker (whether or not it finished). */
    async close(): Promise<void> {
        this.release();
        await this.worker.terminate();
    }
}
