/**
 * The counting worker thread: reads the dump stream the main thread copies to it, so parsing,
 * inflating and line counting never hold up the main thread feeding the uploads. Each piece is
 * acknowledged once consumed; the main thread keeps a bounded number of bytes unacknowledged.
 *
 * Messages in: { type: "chunk", data: ArrayBuffer } | { type: "end" }.
 * Messages out: { type: "ack", bytes } | { type: "done", counts } | { type: "error", message, atEnd }.
 */
import { parentPort, workerData } from "worker_threads";
import { GcPacer } from "../gcpacer";
import { DumpFormat } from "./counts";
import { createDumpReader } from "./reader";
import { inflated } from "./rowsink";

const port = parentPort!;
const reader = createDumpReader((workerData as { format: DumpFormat }).format);
let chain: Promise<void> = Promise.resolve();
let failed = false;
/** The pieces received and the buffers zlib makes are this thread's garbage: see gcpacer.ts. */
const pacer = new GcPacer(8 * 1024 * 1024, 64 * 1024 * 1024);
let inflatedSeen = 0;

function fail(e: unknown, atEnd: boolean): void {
    if (!failed) {
        failed = true;
        port.postMessage({ type: "error", message: (e as Error).message ?? String(e), atEnd });
    }
}

port.on("message", (m: { type: "chunk"; data: ArrayBuffer } | { type: "end" }) => {
    if (m.type === "chunk") {
        const bytes = m.data.byteLength;
        chain = chain
            .then(() => (failed ? undefined : reader.push(Buffer.from(m.data))))
            .then(() => {
                pacer.add(bytes + inflated.bytes - inflatedSeen);
                inflatedSeen = inflated.bytes;
                port.postMessage({ type: "ack", bytes });
            })
            .catch((e) => {
                fail(e, false);
                port.postMessage({ type: "ack", bytes });
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
