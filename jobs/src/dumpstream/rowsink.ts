/**
 * Where one table's data goes to be counted: straight into the row counter when pg_dump did not
 * compress it, through zlib (custom format: a zlib stream per data block) or gunzip (directory
 * format: one .dat.gz file per table) when it did. zlib runs asynchronously (on libuv's thread
 * pool), so each write says when its bytes have been consumed: the caller hands its input buffer
 * back for reuse only then (nothing here may read it afterwards), and that is also what bounds the
 * memory between the job and this counter.
 */
import { createGunzip, createInflate, Inflate, Gunzip } from "zlib";
import { DumpFormatError } from "./archive";
import { CopyRowCounter } from "./copyrows";

export interface RowSink {
    /** Resolves once `data` has been consumed (or the sink has failed): `data` may be reused then. */
    write(data: Buffer): Promise<void>;
    /** No more data: resolves with the row count, rejects if the data was incomplete or corrupt. */
    end(): Promise<number>;
}

export type Encoding = "none" | "zlib" | "gzip";

/** Output pieces of 64 KiB: fewer callbacks than zlib's 16 KiB default for the same work. */
const CHUNK = 64 * 1024;

class PlainRows implements RowSink {
    private readonly counter: CopyRowCounter;
    constructor(what: string) {
        this.counter = new CopyRowCounter(what);
    }
    write(data: Buffer): Promise<void> {
        this.counter.push(data);
        return Promise.resolve();
    }
    end(): Promise<number> {
        return Promise.resolve().then(() => this.counter.finish());
    }
}

class CompressedRows implements RowSink {
    private readonly counter: CopyRowCounter;
    private readonly z: Inflate | Gunzip;
    private failure: Error | undefined;
    private readonly finished: Promise<void>;

    constructor(private readonly what: string, encoding: "zlib" | "gzip") {
        this.counter = new CopyRowCounter(what);
        this.z = encoding === "zlib" ? createInflate({ chunkSize: CHUNK }) : createGunzip({ chunkSize: CHUNK });
        this.finished = new Promise<void>((resolve, reject) => {
            this.z.on("data", (out: Buffer) => {
                try {
                    this.counter.push(out);
                } catch (e) {
                    this.fail(e as Error);
                }
            });
            this.z.once("end", resolve);
            this.z.once("error", (e) => {
                this.fail(new DumpFormatError(`${this.what}: the compressed data is corrupt (${e.message})`));
                reject(this.failure);
            });
        });
        this.finished.catch(() => undefined);
    }

    private fail(e: Error): void {
        if (!this.failure) {
            this.failure = e;
            this.z.destroy(e);
        }
    }

    write(data: Buffer): Promise<void> {
        if (this.failure) {
            return Promise.resolve();
        }
        const written = new Promise<void>((resolve) => {
            this.z.write(data, () => resolve());
        });
        // A failed stream may never call back its pending writes: its failure settles them.
        return Promise.race([written, this.finished.catch(() => undefined)]);
    }

    async end(): Promise<number> {
        if (!this.failure) {
            this.z.end();
            await this.finished.catch(() => undefined);
        }
        if (this.failure) {
            throw this.failure;
        }
        return this.counter.finish();
    }
}

export function rowSink(encoding: Encoding, what: string): RowSink {
    return encoding === "none" ? new PlainRows(what) : new CompressedRows(what, encoding);
}

/**
 * Joins the pieces of one push (a block's payload is cut by 5-byte chunk headers) into one write,
 * in a buffer reused push after push: every write of a push is consumed before the next push
 * starts (the readers await them), so no join is ever allocated per push.
 */
export class PieceJoiner {
    private buf = Buffer.alloc(0);
    private used = 0;

    /** A new push: what the last one wrote has been consumed. */
    reset(): void {
        this.used = 0;
    }

    join(pieces: readonly Buffer[]): Buffer {
        if (pieces.length === 1) {
            return pieces[0];
        }
        const length = pieces.reduce((n, p) => n + p.length, 0);
        if (this.used + length > this.buf.length) {
            // Earlier joins of this push keep the old buffer alive until they are consumed.
            this.buf = Buffer.allocUnsafeSlow(Math.max(length, 512 * 1024));
            this.used = 0;
        }
        const out = this.buf.subarray(this.used, this.used + length);
        let at = 0;
        for (const p of pieces) {
            p.copy(out, at);
            at += p.length;
        }
        this.used += length;
        return out;
    }
}
