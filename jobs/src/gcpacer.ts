/**
 * Paced garbage collection for streaming. Every chunk read from a pipe, inflated by zlib or cut
 * into an upload part is a new buffer outside the V8 heap; V8 collects those only once about
 * 64 MiB more of them exist than after the last collection, so a process streaming gigabytes
 * carries tens of MiB of dead buffers at any time. A young-generation collection every few MiB
 * streamed frees the short-lived ones for about a millisecond; a full one every few tens of MiB
 * frees those that lived long enough to be promoted (upload parts in flight). `gc` is exposed
 * for this when first needed; if the runtime refuses, pacing does nothing.
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
    private minorSince = 0;
    private majorSince = 0;
    /**
     * `minorEvery`: bytes between young-generation collections. `majorEvery`: bytes between full
     * ones, for buffers that live long enough to be promoted (upload parts in flight).
     */
    constructor(private readonly minorEvery: number, private readonly majorEvery: number) {}

    /** Records `bytes` of buffers allocated and collects when it is time. */
    add(bytes: number): void {
        this.minorSince += bytes;
        this.majorSince += bytes;
        if (this.majorSince >= this.majorEvery) {
            this.majorSince = 0;
            this.minorSince = 0;
            collector()?.();
        } else if (this.minorSince >= this.minorEvery) {
            this.minorSince = 0;
            collector()?.({ type: "minor" });
        }
    }
}
