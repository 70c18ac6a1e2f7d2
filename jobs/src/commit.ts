/**
 * The one way an artifact reaches the targets, shared by database dumps and archives: stream it
 * once, hashed, to every target (fan-out with backpressure), fail fast and clean up everywhere on
 * any error, and only then write the manifest that makes it a complete backup.
 */
import { createHash } from "crypto";
import { Readable } from "stream";
import { fanOut } from "./fanout";
import { formatBytes, JobError, Logger } from "./log";
import { Manifest, signManifest, writeManifest } from "./manifest";
import { Target, Upload } from "./targets";

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
    /** Called once the uploads are aborted and partial copies removed, to stop producers. */
    onFailure?: () => void;
    /** For progress lines. */
    label: string;
    log: Logger;
    startedAt: Date;
}

/** Streams `source` to every target; on any failure aborts every upload (removing partial copies) and rethrows. */
export async function streamToTargets(source: Readable, targets: Target[], o: StreamOptions): Promise<Streamed> {
    const uploads: Upload[] = targets.map((t) => t.upload(o.key, o.expectedBytes));
    const hash = createHash("sha256");
    let bytes = 0;
    let lastReport = Date.now();
    const reportEvery = o.log.format === "text" ? 500 : 10_000;
    try {
        const streamed = fanOut(source, uploads.map((u) => u.sink), (chunk) => {
            hash.update(chunk);
            bytes += chunk.length;
            const now = Date.now();
            if (now - lastReport >= reportEvery) {
                lastReport = now;
                const rate = bytes / Math.max((now - o.startedAt.getTime()) / 1000, 0.001);
                o.log.progress(`${o.label}: ${formatBytes(bytes)} at ${formatBytes(rate)}/s`, { name: o.label, bytes });
            }
        });
        await failFast([streamed, ...uploads.map((u) => u.done()), ...o.alongside]);
        return { bytes, sha256: hash.digest("hex") };
    } catch (e) {
        o.onFailure?.();
        await Promise.all(uploads.map((u) => u.abort(e as Error).catch(() => undefined)));
        throw e;
    }
}

/** Writes the manifest on every target; any failure leaves that copy incomplete and fails the run. */
export async function commitManifest(targets: Target[], manifest: Manifest, signingKey?: string): Promise<void> {
    const signed = signManifest(manifest, signingKey);
    const written = await Promise.allSettled(targets.map((t) => writeManifest(t, signed)));
    const failed = written.flatMap((r, i) => (r.status === "rejected" ? [`${targets[i].kind}: ${(r.reason as Error).message}`] : []));
    if (failed.length > 0) {
        throw new JobError(`${manifest.key} is stored but its manifest could not be written to ${failed.join("; ")}: that copy stays incomplete`);
    }
}

/** Like Promise.all, but the first rejection rejects at once (the caller then aborts the rest). */
export function failFast(promises: Promise<unknown>[]): Promise<void> {
    return new Promise((resolve, reject) => {
        let left = promises.length;
        if (left === 0) {
            resolve();
        }
        for (const p of promises) {
            p.then(() => {
                if (--left === 0) {
                    resolve();
                }
            }, reject);
        }
    });
}
