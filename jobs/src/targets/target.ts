/**
 * A place backups are kept. Local directory, S3 and Azure Blob implement the same contract and
 * pass the same test suite. Keys are relative to the target's root (its directory or prefix):
 * `<database>/<database>-YYYYMMDD-HHMMSS-<run>.dump`.
 *
 * Nothing a target writes overwrites anything: every write is exclusive (local O_EXCL + link,
 * S3 `If-None-Match: *`, Azure `ifNoneMatch: "*"`) and fails with ObjectExistsError when the key
 * is taken. An upload is staged first (invisible under its final name) and made visible only by
 * `commit()`, which the caller runs once the producer is proven good.
 */
import { Readable } from "stream";

export interface StoredObject {
    /** Relative key. */
    key: string;
    size: number;
    lastModified: Date;
}

export interface UploadOptions {
    /** Sizes multipart chunks. */
    expectedBytes: number;
    /** Recorded on S3/Azure objects as metadata (`kx-backup-run`), for forensics. */
    runId?: string;
    /** Stops the upload and removes what it staged when aborted (the job's shutdownSignal by default). */
    signal?: AbortSignal;
    /** Told what an operator should know mid-upload (parts grown past the plan: the stream is far larger than expected). */
    warn?: (message: string) => void;
}

/** The warning when a stream outgrows its planned part size (partedStream's onGrow). */
export function partsGrownWarning(kind: string, size: number, overPlan: number): string {
    const mib = (b: number) => `${Math.ceil(b / 1024 ** 2)} MiB`;
    return `${kind}: the stream is far larger than the database size suggested; parts grow to ${mib(size)} to stay within the store's part limit` +
        (overPlan > 0 ? `, holding ${mib(overPlan)} more than BACKUP_MEMORY_BUDGET_MIB planned` : "");
}

export interface Upload {
    /** Where the bytes go; the writer must respect backpressure (write() returning false). */
    readonly sink: NodeJS.WritableStream;
    /**
     * Resolves when every byte is durably staged (S3 parts uploaded, Azure blocks staged, the
     * local `.partial` file synced) and nothing is visible under the final name yet.
     */
    done(): Promise<void>;
    /**
     * Makes the staged object visible under its final name (CompleteMultipartUpload / PutObject,
     * commitBlockList, link). Exclusive: rejects with ObjectExistsError if the key is taken.
     * Call only after done() resolved.
     */
    commit(): Promise<void>;
    /**
     * Stops the upload and removes what this upload created: its staged data and, after
     * commit(), its own object (that version, that ETag, that file) — never anything else.
     * Rejects when its own object could not be removed and is still visible. Safe more than once.
     */
    abort(reason?: Error): Promise<void>;
}

export interface PutOptions {
    /** Replace an existing object (a verify record). Default: exclusive, ObjectExistsError if taken. */
    replace?: boolean;
    /** Recorded as object metadata on S3/Azure. */
    runId?: string;
}

/**
 * What a delete really did. `hidden`: no longer listed, but the data remains (a delete marker,
 * a soft-deleted blob, a previous version) and `kx-backup undelete` can bring it back.
 * `retained`: the store refused, a lock keeps the object where it is (Azure immutability).
 */
export interface DeleteOutcome {
    result: "deleted" | "hidden" | "retained" | "absent";
    /** How the data remains, or why the outcome is uncertain: "delete marker written", "soft-deleted for 7 days". */
    note?: string;
    /** Until when a lock (S3 Object Lock, Azure immutability) keeps the data, when there is one. */
    retainedUntil?: Date;
}

/** An object no longer listed whose data remains on a versioned store. */
export interface HiddenObject extends StoredObject {
    /** "delete marker", "soft-deleted", "previous version". */
    how: string;
    /** When it was hidden, when the store says. */
    hiddenAt?: Date;
    /** Until when the store keeps it anyway (soft-delete expiry, lock), when it says. */
    keptUntil?: Date;
    /** Target-specific: what restoreHidden needs (marker version ids, a version id). */
    readonly handle: unknown;
}

export interface Target {
    /** "local", "s3" or "azure". */
    readonly kind: string;
    /** Human address for logs: file:///backups, s3://bucket/prefix, azure://account/container/prefix. */
    readonly location: string;
    /** Starts a streamed, staged upload (see Upload). */
    upload(key: string, o: UploadOptions): Upload;
    /** Stores a small object whole (manifests, markers); exclusive unless `replace`. */
    putSmall(key: string, body: string, o?: PutOptions): Promise<void>;
    /** All objects under a relative prefix, any order. */
    list(prefix: string): Promise<StoredObject[]>;
    get(key: string): Promise<Readable>;
    /** Deletes (or, on a versioned store, hides) a key and says which. A missing key is not an error. */
    delete(key: string): Promise<DeleteOutcome>;
    /** Objects hidden by a delete whose data remains. Absent on stores without versions (local). */
    listHidden?(prefix: string): Promise<HiddenObject[]>;
    /** Makes a hidden object current again, exclusively; returns what was done, in words. */
    restoreHidden?(o: HiddenObject): Promise<string>;
}

/** The key exists: kx-backup never overwrites. */
export class ObjectExistsError extends Error {
    readonly code = "EEXIST";
    constructor(location: string, key: string, detail = "") {
        super(`${key} already exists on ${location}${detail ? ` (${detail})` : ""}: kx-backup never overwrites an object; nothing was replaced`);
    }
}

/** Reads a whole small object. */
export async function readText(target: Target, key: string): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of await target.get(key)) {
        chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    }
    return Buffer.concat(chunks).toString("utf8");
}

/**
 * Chunk size for a multipart/block upload of unknown final size: large enough that twice the
 * expected size fits the store's part limit, never below `min`. Memory is about chunk × queue,
 * so small databases stay at the minimum. A 5 TB S3 upload fits under 10,000 parts.
 */
export function chunkSize(expectedBytes: number, opts: { maxParts: number; min: number; max: number }): number {
    const needed = Math.ceil((Math.max(expectedBytes, 0) * 2) / opts.maxParts);
    const mib = 1024 * 1024;
    return Math.min(opts.max, Math.max(opts.min, Math.ceil(needed / mib) * mib));
}

/** Waits for a promise to settle, at most `ms`; says how it ended. */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<"resolved" | "rejected" | "timeout"> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), ms);
    });
    try {
        return await Promise.race([p.then(() => "resolved" as const, () => "rejected" as const), timeout]);
    } finally {
        clearTimeout(timer);
    }
}

/** Runs `fn` once when `signal` aborts (at once if it already has); returns the unsubscribe function. */
export function onAbort(signal: AbortSignal | undefined, fn: (reason: Error) => void): () => void {
    if (!signal) {
        return () => undefined;
    }
    const run = () => fn(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? "aborted")));
    if (signal.aborted) {
        queueMicrotask(run);
        return () => undefined;
    }
    signal.addEventListener("abort", run, { once: true });
    return () => signal.removeEventListener("abort", run);
}

/** One line for a delete outcome: what a prune log says. */
export function describeDelete(o: DeleteOutcome): string {
    const until = o.retainedUntil ? `; the data is retained until ${o.retainedUntil.toISOString()}` : "";
    switch (o.result) {
        case "deleted":
            return `deleted${o.note ? ` (${o.note})` : ""}`;
        case "absent":
            return "already gone";
        case "hidden":
            return `hidden, not deleted: ${o.note ?? "the store keeps the data"}${until}`;
        case "retained":
            return `not deleted, still listed: ${o.note ?? "a lock keeps it"}${until}; prune tries again on its next run`;
    }
}
