/**
 * Counting a dump as the job streams it, without holding up the uploads: `tap()` passes every
 * byte on unchanged and copies it to a worker thread that reads the dump (see worker.ts). At most
 * `maxInFlight` bytes wait for the worker; beyond that the tap holds the stream back, the same
 * backpressure the targets apply, so memory stays bounded when the worker falls behind.
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

type FromWorker = { type: "ack"; data: ArrayBuffer } | { type: "done"; counts: DumpCounts } | { type: "error"; message: string; atEnd: boolean };

export class DumpStreamCounter {
    private readonly worker: Worker;
    private readonly outcome: Promise<DumpCounts>;
    private inFlight = 0;
    /** Batch buffers back from the worker, for reuse: at most maxInFlight / BATCH + 1 ever exist. */
    private readonly free: ArrayBuffer[] = [];
    private held: (() => void) | undefined;
    private settled = false;

    constructor(format: DumpFormat, private readonly maxInFlight = 4 * 1024 * 1024) {
        this.worker = new Worker(workerSource(), {
            eval: true,
            workerData: { format },
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
                } else if (m.type === "done") {
                    settle(() => resolve(m.counts));
                } else {
                    settle(() => reject(new DumpStreamError(m.message, m.atEnd)));
                }
            });
            this.worker.once("error", (e) => settle(() => reject(new DumpStreamError(`counting the dump failed: ${e.message}`, false))));
            this.worker.once("exit", (code) => settle(() => reject(new DumpStreamError(`the dump-counting worker stopped (exit ${code}) before it finished`, false))));
        });
        this.outcome.catch(() => undefined);
    }

    private release(): void {
        const held = this.held;
        this.held = undefined;
        held?.();
    }

    /** The stream to upload: `source`'s bytes, unchanged, each also counted. */
    tap(source: Readable): Readable {
        const worker = this.worker;
        // Every chunk, the copy in the batch for the worker and the one in the 1 MiB buffers passed
        // on are garbage once used: see gcpacer.ts.
        const pacer = new GcPacer(16 * 1024 * 1024, 64 * 1024 * 1024);
        // Bytes go to the worker in batches (one message per BATCH bytes, not per pipe read), in
        // buffers transferred there and back: owned by one thread at a time, never allocated anew.
        const toWorker = batcher(BATCH, () => new Uint8Array(this.free.pop() ?? new ArrayBuffer(BATCH)), (batch, length) => {
            worker.postMessage({ type: "chunk", data: batch.buffer, length }, [batch.buffer]);
            this.inFlight += BATCH;
        });
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
