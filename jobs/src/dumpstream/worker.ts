/**
 * The counting worker thread: reads the dump stream the main thread copies to it, so parsing,
 * inflating and line counting never hold up the main thread feeding the uploads. Each batch comes
 * in a buffer the main thread transfers, and goes back (transferred again) once consumed, for
 * reuse: a fixed set of buffers circulates, nothing is allocated per batch, and the number of
 * bytes in flight stays bounded.
 *
 * Messages in: { type: "chunk", data: ArrayBuffer, length } | { type: "end" }.
 * Messages out: { type: "ack", data: ArrayBuffer } | { type: "done", counts } | { type: "error", message, atEnd }.
 */
import { parentPort, workerData } from "worker_threads";
import { DumpFormat } from "./counts";
import { GcPacer } from "../gcpacer";
import { createDumpReader } from "./reader";

const port = parentPort!;
const reader = createDumpReader((workerData as { format: DumpFormat }).format);
let chain: Promise<void> = Promise.resolve();
let failed = false;
/**
 * zlib's output pieces are this thread's only garbage (batches come and go in the same buffers):
 * a young-generation collection every 4 MiB read frees them (see gcpacer.ts); measured, full
 * collections here gain nothing.
 */
const pacer = new GcPacer(4 * 1024 * 1024, Infinity);

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
            pacer.add(m.length);
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
                port.postMessage({ type: "done", counts: await reader.end() });
            } catch (e) {
                fail(e, true);
            }
        });
    }
});
