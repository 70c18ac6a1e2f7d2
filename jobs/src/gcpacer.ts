/**
 * Paced garbage collection for streaming. Every chunk read from a pipe, inflated by zlib or cut
 * into an upload part is a new buffer outside the V8 heap; V8 collects those only once about
 * 64 MiB more of them exist than after the last collection, so a process streaming gigabytes
 * carries tens of MiB of dead buffers at any time. A young-generation collection every few MiB
 * streamed frees them for about a millisecond each (the buffers are short-lived, so they are
 * young). `gc` is exposed for this at startup, on this isolate only; if the runtime refuses,
 * pacing does nothing and the process behaves as before.
 */
import { setFlagsFromString } from "v8";
import { runInNewContext } from "vm";

type Gc = (options?: { type: "minor" | "major" }) => void;

let gc: Gc | undefined | null;

function collector(): Gc | undefined {
    if (gc === undefined) {
        try {
            setFlagsFromString("--expose-gc");
            gc = runInNewContext("gc") as Gc;
        } catch {
            gc = null;
        }
    }
    return gc ?? undefined;
}

export class GcPacer {
    private since = 0;
    constructor(private readonly everyBytes: number) {}

    /** Records `bytes` of buffers allocated; collects young garbage once `everyBytes` have passed. */
    add(bytes: number): void {
        this.since += bytes;
        if (this.since >= this.everyBytes) {
            this.since = 0;
            collector()?.({ type: "minor" });
        }
    }
}
