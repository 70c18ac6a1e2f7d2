/**
 * Where one table's data goes to be counted: straight into the row counter when pg_dump did not
 * compress it, through zlib (custom format: a zlib stream per data block) or gunzip (directory
 * format: one .dat.gz file per table) when it did. zlib runs asynchronously (on libuv's thread
 * pool), so `settled()` says when everything written so far has been consumed: the caller acks
 * its input only then, which is what bounds the memory between the job and this counter.
 */
import { createGunzip, createInflate, Inflate, Gunzip } from "zlib";
import { DumpFormatError } from "./archive";
import { CopyRowCounter } from "./copyrows";

export interface RowSink {
    write(data: Buffer): void;
    /** Resolves once every byte written so far has been counted (or the sink has failed). */
    settled(): Promise<void>;
    /** No more data: resolves with the row count, rejects if the data was incomplete or corrupt. */
    end(): Promise<number>;
}

export type Encoding = "none" | "zlib" | "gzip";

/** Bytes inflated in this thread so far (each output piece is a new buffer, garbage once counted): for GC pacing. */
export const inflated = { bytes: 0 };

/** Output pieces of 64 KiB: fewer callbacks than zlib's 16 KiB default for the same work. */
const CHUNK = 64 * 1024;

class PlainRows implements RowSink {
    private readonly counter: CopyRowCounter;
    constructor(what: string) {
        this.counter = new CopyRowCounter(what);
    }
    write(data: Buffer): void {
        this.counter.push(data);
    }
    settled(): Promise<void> {
        return Promise.resolve();
    }
    end(): Promise<number> {
        return Promise.resolve().then(() => this.counter.finish());
    }
}

class CompressedRows implements RowSink {
    private readonly counter: CopyRowCounter;
    private readonly z: Inflate | Gunzip;
    private last: Promise<void> = Promise.resolve();
    private failure: Error | undefined;
    private readonly finished: Promise<void>;

    constructor(private readonly what: string, encoding: "zlib" | "gzip") {
        this.counter = new CopyRowCounter(what);
        this.z = encoding === "zlib" ? createInflate({ chunkSize: CHUNK }) : createGunzip({ chunkSize: CHUNK });
        this.finished = new Promise<void>((resolve, reject) => {
            this.z.on("data", (out: Buffer) => {
                inflated.bytes += out.length;
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

    write(data: Buffer): void {
        if (this.failure) {
            return;
        }
        this.last = new Promise<void>((resolve) => {
            this.z.write(data, () => resolve());
        });
    }

    settled(): Promise<void> {
        // A failed stream may never call back its pending writes: its failure settles them.
        return Promise.race([this.last, this.finished.catch(() => undefined)]);
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
