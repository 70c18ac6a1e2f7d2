/**
 * The Upload contract, once for every store: bytes are staged through `sink`; commit() publishes
 * them (exclusively) once staged; abort() — on failure, or when the signal fires — stops the
 * sink, cancels in-flight requests, waits for a publish already under way to settle, then
 * removes exactly what this upload made: the published object, or else what it staged.
 */
import { Writable } from "stream";
import { onAbort, settleWithin, Upload } from "./target";

export interface StagedStore {
    sink: Writable;
    /** Resolves once every byte is staged; rejects when staging failed. */
    staged: Promise<void>;
    /** Aborted to cancel in-flight staging requests (never the publish itself). */
    requests?: AbortController;
    /** Stops the upload (the job's shutdownSignal by default, passed by the target). */
    signal: AbortSignal;
    /** Makes the staged object visible under its final name, exclusively. */
    publish(): Promise<void>;
    /** After publish: removes exactly what publish made visible. */
    unpublish(): Promise<void>;
    /** Before (or instead of) publish: drops what was staged; nothing is visible. */
    unstage(): Promise<void>;
}

export function stagedUpload(s: StagedStore): Upload {
    let publishing: Promise<void> | undefined;
    let aborting: Promise<void> | undefined;
    const abort = (reason?: Error): Promise<void> => {
        aborting ??= (async () => {
            stopListening();
            s.sink.destroy(reason ?? new Error("upload aborted"));
            s.requests?.abort();
            await settleWithin(s.staged, 30_000);
            // A publish in flight either lands (then it is ours to remove) or fails: know which first.
            const published = publishing ? (await settleWithin(publishing, 120_000)) !== "rejected" : false;
            await (published ? s.unpublish() : s.unstage());
        })();
        return aborting;
    };
    const stopListening = onAbort(s.signal, (reason) => void abort(reason).catch(() => undefined));
    return {
        sink: s.sink,
        done: () => s.staged,
        commit: async () => {
            await s.staged;
            if (aborting) {
                throw new Error("the upload was aborted");
            }
            publishing ??= s.publish();
            await publishing;
            stopListening();
        },
        abort,
    };
}
