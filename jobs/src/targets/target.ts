/**
 * A place backups are kept. Local directory, S3 and Azure Blob implement the same contract and
 * pass the same test suite. Keys are relative to the target's root (its directory or prefix):
 * `<database>/<database>-YYYYMMDD-HHMMSS.dump`.
 */
import { Readable } from "stream";

export interface StoredObject {
    /** Relative key. */
    key: string;
    size: number;
    lastModified: Date;
}

export interface Upload {
    /** Where the bytes go; the writer must respect backpressure (write() returning false). */
    readonly sink: NodeJS.WritableStream;
    /** Resolves when the object is durably stored under its final key. */
    done(): Promise<void>;
    /** Stops the upload and removes whatever was partly written. Safe to call more than once. */
    abort(reason?: Error): Promise<void>;
}

export interface Target {
    /** "local", "s3" or "azure". */
    readonly kind: string;
    /** Human address for logs: file:///backups, s3://bucket/prefix, azure://account/container/prefix. */
    readonly location: string;
    /** Starts a streamed upload. `expectedBytes` sizes multipart chunks. */
    upload(key: string, expectedBytes: number): Upload;
    /** Stores a small object whole (manifests). */
    putSmall(key: string, body: string): Promise<void>;
    /** All objects under a relative prefix, any order. */
    list(prefix: string): Promise<StoredObject[]>;
    get(key: string): Promise<Readable>;
    /** Deleting a missing key is not an error. */
    delete(key: string): Promise<void>;
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
