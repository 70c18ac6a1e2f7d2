/**
 * The one way an artifact reaches the targets, shared by database dumps and archives:
 *   1. an in-progress marker (`<key>.inprogress.json`) is written, exclusively, on every target:
 *      whatever this run leaves behind is then recognisably kx-backup's own;
 *   2. the artifact is streamed once, hashed, to every target (fan-out with backpressure) and
 *      staged there, invisible under its final name;
 *   3. only when every target holds every byte AND the producer is proven good (its exit code,
 *      the row counts: `alongside`) is it committed — made visible — on every target;
 *   4. the manifest (commitManifest) makes it a complete backup, and the marker goes.
 * On any failure, each target loses exactly what this run created there (never another run's
 * object), then its marker; the error is the first cause, naming the target that failed.
 */
import { createHash } from "crypto";
import * as os from "os";
import { Readable } from "stream";
import { fanOut, SinkError } from "./fanout";
import { formatBytes, JobError, Logger } from "./log";
import { Manifest, signManifest, writeManifest } from "./manifest";
import { inProgressKey, parseBackupName } from "./naming";
import { shutdownSignal } from "./shutdown";
import { onAbort, Target, Upload } from "./targets";

export interface Streamed {
    bytes: number;
    sha256: string;
}

export interface StreamOptions {
    key: string;
    /** Sizes multipart chunks. */
    expectedBytes: number;
    /** Everything else that must succeed for the artifact to be good (the producer's exit, row counts). */
    alongside: Promise<unknown>[];
    /** Called once on failure, before the uploads are aborted, to stop producers. */
    onFailure?: () => void;
    /** For progress lines and the in-progress marker. */
    label: string;
    log: Logger;
    startedAt: Date;
    /** Stops the run (default: the job's shutdownSignal, aborted on SIGTERM/SIGINT). */
    signal?: AbortSignal;
}

/** A target's failure, named: `local file:///backups: EACCES: permission denied, open '…'`. */
export class TargetFailure extends Error {
    constructor(readonly target: Target, readonly cause: Error, during?: string) {
        super(`${target.kind} ${target.location}: ${cause.message}${during ? ` (${during})` : ""}`);
    }
}

function named(target: Target, e: unknown, during?: string): Error {
    return e instanceof TargetFailure || isStop(e) ? (e as Error) : new TargetFailure(target, e as Error, during);
}

function isStop(e: unknown): boolean {
    return (e as { exitCode?: number })?.exitCode === 143 || (e as Error)?.name === "AbortError";
}

/** Artifacts committed and awaiting their manifest, by key. */
const awaitingManifest = new Map<string, { targets: Target[]; uploads: Upload[]; stopListening: () => void; log: Logger }>();

/** What the in-progress marker says: enough to tell, later, who left an object and when. */
export function markerBody(key: string, label: string, startedAt: Date): string {
    return `${JSON.stringify({
        kind: "kx-backup/in-progress",
        key,
        runId: parseBackupName(key)?.runId,
        what: label,
        startedAt: startedAt.toISOString(),
        host: os.hostname(),
        pid: process.pid,
    }, null, 2)}\n`;
}

/** Streams `source` to every target and commits it there; on any failure removes this run's objects and rethrows the first cause. */
export async function streamToTargets(source: Readable, targets: Target[], o: StreamOptions): Promise<Streamed> {
    const signal = o.signal ?? shutdownSignal;
    const release = hold(source);
    const runId = parseBackupName(o.key)?.runId;
    // Read through failFast below; a producer failing after we stopped it is never unhandled.
    for (const p of o.alongside) {
        p.catch(() => undefined);
    }
    const markers: boolean[] = targets.map(() => false);
    const uploads: (Upload | undefined)[] = [];
    const hash = createHash("sha256");
    let bytes = 0;
    let lastReport = Date.now();
    const reportEvery = o.log.format === "text" ? 500 : 10_000;
    try {
        stopIfAborted(signal);
        const marked = await Promise.allSettled(targets.map((t, i) =>
            t.putSmall(inProgressKey(o.key), markerBody(o.key, o.label, o.startedAt), { runId }).then(() => {
                markers[i] = true;
            })));
        const unmarked = marked.findIndex((r) => r.status === "rejected");
        if (unmarked >= 0) {
            throw named(targets[unmarked], (marked[unmarked] as PromiseRejectedResult).reason, "writing the in-progress marker");
        }
        stopIfAborted(signal);
        targets.forEach((t, i) => {
            try {
                uploads[i] = t.upload(o.key, {
                    expectedBytes: o.expectedBytes, runId, signal,
                    warn: (message) => o.log.warn(message, { event: "upload.parts-grown", target: t.kind, key: o.key }),
                });
            } catch (e) {
                throw named(t, e, "starting the upload");
            }
        });
        const live = uploads as Upload[];
        release();
        const streamed = fanOut(source, live.map((u) => u.sink), (chunk) => {
            hash.update(chunk);
            bytes += chunk.length;
            const now = Date.now();
            if (now - lastReport >= reportEvery) {
                lastReport = now;
                const rate = bytes / Math.max((now - o.startedAt.getTime()) / 1000, 0.001);
                o.log.progress(`${o.label}: ${formatBytes(bytes)} at ${formatBytes(rate)}/s`, { name: o.label, bytes });
            }
        }).catch((e) => {
            throw e instanceof SinkError ? named(targets[e.index], e.cause) : e;
        });
        // Every byte staged everywhere, and the producer proven: only then may anything become visible.
        await failFast([streamed, ...live.map((u, i) => u.done().catch((e) => {
            throw named(targets[i], e);
        })), ...o.alongside], signal);
        await failFast(live.map((u, i) => u.commit().catch((e) => {
            throw named(targets[i], e, "committing");
        })), signal);
    } catch (e) {
        o.onFailure?.();
        release();
        source.destroy();
        await discard(targets, uploads, markers, o.key, e as Error, o.log);
        throw e;
    }
    // Until its manifest is written, a stop removes the committed artifact again.
    const stopListening = onAbort(signal, (reason) => void discardArtifact(o.key, reason));
    awaitingManifest.set(o.key, { targets, uploads: uploads as Upload[], stopListening, log: o.log });
    return { bytes, sha256: hash.digest("hex") };
}

/**
 * Keeps the producer's output while the markers are written: Node drains (and drops) a child's
 * unread stdout when the child exits, unless something listens to it. Returns the release.
 */
function hold(source: Readable): () => void {
    const keep = () => undefined;
    // Until fanOut listens, a failing source must not crash the process: fanOut sees it as destroyed.
    const swallow = () => undefined;
    source.on("readable", keep);
    source.on("error", swallow);
    return () => {
        source.removeListener("readable", keep);
        source.removeListener("error", swallow);
    };
}

function stopIfAborted(signal: AbortSignal): void {
    if (signal.aborted) {
        throw signal.reason instanceof Error ? signal.reason : new Error("stopped");
    }
}

/**
 * Removes, on each target, what this run created there (its staged or committed upload), then
 * its marker. When the object cannot be removed (Object Lock keeps it), the marker stays: the
 * leftover is then still recognisably kx-backup's own.
 */
async function discard(targets: Target[], uploads: (Upload | undefined)[], markers: boolean[], key: string, reason: Error, log: Logger): Promise<void> {
    await Promise.all(targets.map(async (t, i) => {
        try {
            await uploads[i]?.abort(reason);
        } catch (e) {
            log.warn(`could not remove ${key} from ${t.location}: ${(e as Error).message}; its in-progress marker stays`, { event: "upload.cleanup-failed", target: t.kind, key });
            return;
        }
        if (markers[i]) {
            await t.delete(inProgressKey(key)).catch((e) => {
                log.warn(`could not remove ${inProgressKey(key)} from ${t.location}: ${(e as Error).message}`, { event: "upload.cleanup-failed", target: t.kind, key });
            });
        }
    }));
}

/**
 * For a failure after streamToTargets succeeded and before commitManifest: removes the run's
 * committed artifact from every target, then its markers. Does nothing for an unknown key.
 */
export async function discardArtifact(key: string, reason: Error = new Error("backup abandoned")): Promise<void> {
    const entry = awaitingManifest.get(key);
    if (!entry) {
        return;
    }
    awaitingManifest.delete(key);
    entry.stopListening();
    await discard(entry.targets, entry.uploads, entry.targets.map(() => true), key, reason, entry.log);
}

/**
 * Writes the manifest, exclusively, on every target, then removes the in-progress marker. A
 * target whose manifest cannot be written loses this run's artifact (and then its marker): no
 * copy is left that looks like a backup but is not one. The run then fails, naming that target.
 */
export async function commitManifest(targets: Target[], manifest: Manifest, signingKey?: string): Promise<void> {
    const entry = awaitingManifest.get(manifest.key);
    awaitingManifest.delete(manifest.key);
    entry?.stopListening();
    const signed = signManifest(manifest, signingKey);
    const written = await Promise.allSettled(targets.map((t) => writeManifest(t, signed)));
    const failed: string[] = [];
    await Promise.all(targets.map(async (t, i) => {
        const r = written[i];
        if (r.status === "fulfilled") {
            await t.delete(inProgressKey(manifest.key)).catch((e) => {
                entry?.log.warn(`could not remove ${inProgressKey(manifest.key)} from ${t.location}: ${(e as Error).message}`, { event: "manifest.marker-left", target: t.kind });
            });
            return;
        }
        const at = entry ? entry.targets.indexOf(t) : -1;
        if (at >= 0) {
            await discard([t], [entry!.uploads[at]], [true], manifest.key, r.reason as Error, entry!.log);
        }
        if (manifest.globals) {
            // Written by this run beside the copy that is gone: it goes too.
            await t.delete(manifest.globals.key).catch(() => undefined);
        }
        failed.push(`${t.kind} ${t.location}: ${(r.reason as Error).message}`);
    }));
    if (failed.length > 0) {
        throw new JobError(`${manifest.key}: the manifest could not be written to ${failed.join("; ")}; that copy was removed (a copy with its manifest stays complete)`);
    }
}

/** Like Promise.all, but the first rejection (or the signal) rejects at once: the first cause, before any consequence. */
export function failFast(promises: Promise<unknown>[], signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
        let left = promises.length;
        const stop = onAbort(signal, reject);
        const settle = (fn: () => void) => {
            stop();
            fn();
        };
        if (left === 0) {
            settle(resolve);
        }
        for (const p of promises) {
            p.then(() => {
                if (--left === 0) {
                    settle(resolve);
                }
            }, (e) => settle(() => reject(e)));
        }
    });
}
