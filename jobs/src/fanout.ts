/**
 * One read of the dump, written to every target at once. The source is paused while any sink
 * is full and resumed when all have drained, so memory stays at a few chunks per target however
 * large the dump is; every byte also goes through the hash.
 */
import { Readable } from "stream";

export interface FanOutResult {
    bytes: number;
}

/** A sink failed: which one, and why. */
export class SinkError extends Error {
    constructor(readonly index: number, readonly cause: Error) {
        super(cause.message);
    }
}

export function fanOut(
    source: Readable,
    sinks: readonly NodeJS.WritableStream[],
    onChunk: (chunk: Buffer) => void,
): Promise<FanOutResult> {
    return new Promise((resolve, reject) => {
        let bytes = 0;
        let waiting = 0;
        let settled = false;
        const fail = (e: Error) => {
            if (!settled) {
                settled = true;
                source.destroy();
                reject(e);
            }
        };
        const onDrain = () => {
            waiting--;
            if (waiting === 0 && !settled) {
                source.resume();
            }
        };
        sinks.forEach((sink, i) => {
            sink.on("error", (e: Error) => fail(new SinkError(i, e)));
            // A sink destroyed without an error (an abort) must not leave the source waiting for 'drain'.
            sink.on("close", () => {
                if (!(sink as NodeJS.WritableStream & { writableFinished?: boolean }).writableFinished) {
                    fail(new SinkError(i, new Error("closed before the end of the stream")));
                }
            });
        });
        source.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            onChunk(chunk);
            for (const sink of sinks) {
                if (!sink.write(chunk)) {
                    waiting++;
                    sink.once("drain", onDrain);
                }
            }
            if (waiting > 0) {
                source.pause();
            }
        });
        source.once("error", fail);
        // Ended without its 'end' (destroyed, or failed before anyone listened): never wait forever.
        const cut = () => fail(source.errored ?? new Error("the source closed before its end"));
        if (source.destroyed && !source.readableEnded) {
            queueMicrotask(cut);
        }
        source.once("close", () => {
            if (!source.readableEnded) {
                cut();
            }
        });
        // A source that was held paused (see commit.ts) flows from here.
        source.resume();
        source.once("end", () => {
            if (settled) {
                return;
            }
            settled = true;
            for (const sink of sinks) {
                sink.end();
            }
            resolve({ bytes });
        });
    });
}
