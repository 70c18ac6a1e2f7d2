/**
 * The counting worker thread: reads the dump stream the main thread copies to it, so parsing,
 * inflating and line counting never hold up the main thread feeding the uploads. With
 * `recompress`, it also rebuilds the (uncompressed) custom-format stream as the zlib-compressed
 * archive that is uploaded (recompress.ts), sent back in order as `out` messages before `done`.
 * Each batch comes in a buffer the main thread transfers, and goes back (transferred again) once consumed, for
 * reuse: a fixed set of buffers circulates, nothing is allocated per batch, and the number of
 * bytes in flight stays bounded.
 *
 * Messages in: { type: "chunk", data: ArrayBuffer, length } | { type: "end" }.
 * Messages out: { type: "ack", data: ArrayBuffer } | { type: "out", data: Uint8Array } |
 *   { type: "done", counts } | { type: "error", message, atEnd }.
 */
import { parentPort, workerData } from "worker_threads";
import { DumpFormat } from "./counts";
import { GcPacer } from "../gcpacer";
import { CustomDumpReader } from "./custom";
import { createDumpReader } from "./reader";
import { ArchiveRecompressor } from "./recompress";

const port = parentPort!;
const options = workerData as { format: DumpFormat; recompress?: { level: number; threads: number } };
/**
 * Bytes per `out` message. The rebuilt archive goes back copied (structured clone), not
 * transferred: this thread reuses its one buffer instead of allocating one per message for the
 * main thread to free. (Measured against transferring: no difference in peak RSS either way.)
 */
const OUT_BATCH = 1024 * 1024;
const out = Buffer.from(new ArrayBuffer(options.recompress ? OUT_BATCH : 0));
let outFilled = 0;
function sendOut(): void {
    if (outFilled > 0) {
        port.postMessage({ type: "out", data: out.subarray(0, outFilled) });
    }
    outFilled = 0;
}
function emit(bytes: Buffer): void {
    for (let at = 0; at < bytes.length; ) {
        const n = Math.min(OUT_BATCH - outFilled, bytes.length - at);
        bytes.copy(out, outFilled, at, at + n);
        outFilled += n;
        at += n;
        if (outFilled === OUT_BATCH) {
            sendOut();
        }
    }
}
const reader = options.recompress
    ? new CustomDumpReader(new ArchiveRecompressor({ ...options.recompress, emit }))
    : createDumpReader(options.format);
let chain: Promise<void> = Promise.resolve();
let failed = false;
/**
 * zlib's output pieces are this thread's only garbage when counting (batches come and go in the
 * same buffers): a young-generation collection every 4 MiB read frees them (see gcpacer.ts), and
 * full collections gain nothing. Rebuilding, every piece deflated leaves its zlib engine and output
 * buffers behind, and they outlive young collections while the pieces wait their turn: a full
 * collection every 16 MiB counted (8 MiB read) frees those. (Every 1 MiB costs seconds of CPU
 * per GiB; the r-zip review measured every 8 MiB at about 2 ms per MiB read.)
 */
const pacer = new GcPacer(4 * 1024 * 1024, options.recompress ? 16 * 1024 * 1024 : Infinity);

function fail(e: unknown, atEnd: boolean): void {
    if (!failed) {
        failed = true;
        port.postMessage({ type: "error", message: (e as Error).message ?? String(e), atEnd });
    }
}

port.on("message", (m: { type: "chunk"; data: ArrayBuffer; length: number } | { type: "end" }) => {
    if (m.type === "chunk") {
        // Returned only once the readers have consumed it and kept no view of it (see their push()).
        const giveBack = () => {
            // Rebuilding copies every byte into a piece and gets its deflated output back: twice the garbage.
            pacer.add(options.recompress ? 2 * m.length : m.length);
            port.postMessage({ type: "ack", data: m.data }, [m.data]);
        };
        chain = chain
            .then(() => (failed ? undefined : reader.push(Buffer.from(m.data, 0, m.length))))
            .then(giveBack, (e) => {
                fail(e, false);
                giveBack();
            });
    } else {
        chain = chain.then(async () => {
            if (failed) {
                return;
            }
            try {
                const counts = await reader.end();
                sendOut();
                port.postMessage({ type: "done", counts });
            } catch (e) {
                fail(e, true);
            }
        });
    }
});
