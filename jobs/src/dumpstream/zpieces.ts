/**
 * One zlib stream (RFC 1950) compressed in pieces at once, the way pigz parallelises gzip: the
 * input is cut into pieces; each is deflated on its own (raw deflate, on libuv's thread pool),
 * primed with the 32 KiB before it as its dictionary and ended with a sync flush (the last with
 * the final block), so the pieces' outputs, concatenated between the two-byte zlib header and the
 * Adler-32 of the whole input, are one valid stream — what `inflate` (and so pg_restore) reads.
 * Nothing about the result depends on how many pieces ran at once.
 */
import { constants, createDeflateRaw, ZlibOptions } from "zlib";

/** Deflate's window: the most a piece can refer back to. */
const WINDOW = 32 * 1024;
const ADLER_BASE = 65521;
/**
 * zlib's output buffers: a piece's output is a few of them, framed and written as they are.
 * (Letting zlib write into one buffer of half the piece and then joining its output, as
 * `deflateRaw()` does, cost about 8 MiB of peak RSS with two threads, for no speed: measured on
 * a 620 MiB database, three runs each.)
 */
const DEFLATE_CHUNK = 64 * 1024;
/** The most bytes Adler-32 can sum before its 32-bit sums must be reduced (zlib's NMAX). */
const ADLER_NMAX = 5552;

/** Adler-32 of `data`, continuing from `adler` (1 for a new stream). Pure. */
export function adler32(data: Uint8Array, adler = 1): number {
    let a = adler & 0xffff;
    let b = (adler >>> 16) & 0xffff;
    const n = data.length;
    let i = 0;
    while (i < n) {
        const end = Math.min(i + ADLER_NMAX, n);
        for (; i < end; i++) {
            a += data[i];
            b += a;
        }
        a %= ADLER_BASE;
        b %= ADLER_BASE;
    }
    return ((b << 16) | a) >>> 0;
}

/** The two-byte zlib header deflate writes for `level` (-1: zlib's default, 6), without a dictionary. Pure. */
export function zlibHeader(level: number): Buffer {
    const l = level < 0 ? 6 : level;
    const flevel = l < 2 ? 0 : l < 6 ? 1 : l === 6 ? 2 : 3;
    const cmf = 0x78; // deflate, 32 KiB window
    let flg = flevel << 6;
    flg += 31 - ((cmf * 256 + flg) % 31);
    return Buffer.from([cmf, flg]);
}

/**
 * Deflates one piece on libuv's thread pool; its output as zlib writes it, in buffers of
 * `options.chunkSize`, never joined: each is framed and written as it is.
 */
function deflatePiece(data: Buffer, options: ZlibOptions): Promise<Buffer[]> {
    return new Promise((resolve, reject) => {
        const engine = createDeflateRaw(options);
        const out: Buffer[] = [];
        engine.on("data", (b: Buffer) => out.push(b));
        engine.once("error", reject);
        engine.once("end", () => resolve(out));
        engine.end(data);
    });
}

/** A piece in flight: settled once deflated; its output written in stream order. */
interface Job {
    out?: Buffer[];
    error?: Error;
}

/**
 * Writes zlib streams as chunks `frame(bytes)` in order, deflating up to `threads` pieces at once.
 * Everything else the caller writes between streams (`literal`) keeps its place after the pieces
 * before it. `ready()` resolves when a new piece may be started: the caller's backpressure.
 */
export class PieceDeflater {
    private readonly order: (Buffer | Job)[] = [];
    private running = 0;
    private waiting: (() => void)[] = [];
    private failure: Error | undefined;
    private piece: Buffer | undefined;
    private filled = 0;
    private adler = 1;
    private first = true;
    /**
     * A copy of the last 32 KiB of the piece submitted last: the next piece's dictionary. A copy of
     * its own, so it never depends on when the piece's buffer, back in the pool once deflated, is
     * written again (today only after the next piece has started; a view would rely on that).
     */
    private dictionary: Buffer | undefined;
    private open = false;
    /** Piece buffers whose deflate is done, for reuse: at most `threads` + 1 are kept. */
    private readonly free: Buffer[] = [];
    /** Pieces submitted but not started: at most `threads` deflate at once. */
    private readonly pending: (() => void)[] = [];

    /**
     * `frame` turns one piece's output into what is written (for pg_dump's custom format: a
     * length-prefixed chunk); `emit` receives everything, in order.
     */
    constructor(
        private readonly o: { level: number; threads: number; pieceBytes: number; frame: (bytes: Buffer[]) => Buffer[]; emit: (b: Buffer) => void },
    ) {
        if (o.pieceBytes < WINDOW) {
            throw new RangeError(`pieces must be at least ${WINDOW} bytes`);
        }
    }

    /** Bytes written as they are, after everything written before them. */
    literal(bytes: Buffer): void {
        if (this.order.length === 0) {
            this.o.emit(bytes);
        } else {
            this.order.push(bytes);
        }
    }

    /** Starts a zlib stream. */
    begin(): void {
        if (this.open) {
            throw new Error("a zlib stream is already open");
        }
        this.open = true;
        this.adler = 1;
        this.first = true;
        this.dictionary = undefined;
        this.filled = 0;
    }

    /** Input of the open stream; copied (the caller may reuse `data` at once). */
    write(data: Uint8Array): void {
        for (let at = 0; at < data.length; ) {
            this.piece ??= this.free.pop() ?? Buffer.allocUnsafeSlow(this.o.pieceBytes);
            const n = Math.min(this.o.pieceBytes - this.filled, data.length - at);
            this.piece.set(data.subarray(at, at + n), this.filled);
            this.filled += n;
            at += n;
            if (this.filled === this.o.pieceBytes) {
                this.submit(false);
            }
        }
    }

    /** Ends the open stream: its last piece, with the final block and the Adler-32 trailer. */
    end(): void {
        if (!this.open) {
            throw new Error("no zlib stream is open");
        }
        this.submit(true);
        this.open = false;
    }

    private submit(final: boolean): void {
        const piece = this.piece;
        const input = piece ? piece.subarray(0, this.filled) : Buffer.alloc(0);
        this.piece = undefined;
        this.filled = 0;
        this.adler = adler32(input, this.adler);
        const options: ZlibOptions = {
            level: this.o.level,
            finishFlush: final ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
            // A small piece gets an output buffer of about its own size: finished pieces wait, output
            // and all, behind a slower one, and thousands of small large objects come in one batch.
            chunkSize: Math.min(DEFLATE_CHUNK, input.length + 1024),
        };
        const head = this.first ? zlibHeader(this.o.level) : undefined;
        this.first = false;
        const trailer = final ? Buffer.alloc(4) : undefined;
        trailer?.writeUInt32BE(this.adler);
        const job: Job = {};
        this.order.push(job);
        // At most `threads` deflates exist at once (each is a zlib engine of ~256 KiB and its output
        // buffers): the rest wait here. A small last piece waits in a copy of its own size, and its
        // 1 MiB buffer goes back to the pool at once.
        let ownInput = input;
        let ownPiece = piece;
        if (piece && final && input.length <= this.o.pieceBytes / 8) {
            ownInput = Buffer.from(input);
            this.release(piece);
            ownPiece = undefined;
        }
        if (this.dictionary) {
            options.dictionary = this.dictionary;
        }
        this.dictionary = input.length >= WINDOW ? Buffer.from(input.subarray(input.length - WINDOW)) : undefined;
        this.pending.push(() => this.start(job, ownInput, ownPiece, options, head, trailer));
        this.startPending();
    }

    private release(piece: Buffer): void {
        if (this.free.length <= this.o.threads) {
            this.free.push(piece);
        }
    }

    private startPending(): void {
        while (this.running < this.o.threads && this.pending.length > 0) {
            this.pending.shift()!();
        }
    }

    private start(job: Job, input: Buffer, piece: Buffer | undefined, options: ZlibOptions, head: Buffer | undefined, trailer: Buffer | undefined): void {
        this.running++;
        deflatePiece(input, options).then(
            (body) => {
                job.out = this.o.frame([head, ...body, trailer].filter((b): b is Buffer => b !== undefined && b.length > 0));
            },
            (e: Error) => {
                job.error = e;
            },
        ).finally(() => {
            if (piece) {
                this.release(piece);
            }
            this.running--;
            this.startPending();
            this.pump();
            const waiting = this.waiting;
            this.waiting = [];
            for (const w of waiting) {
                w();
            }
        });
    }

    /** Writes out, in order, whatever is complete at the head of the queue. */
    private pump(): void {
        while (this.order.length > 0) {
            const next = this.order[0];
            if (Buffer.isBuffer(next)) {
                this.o.emit(next);
            } else if (next.error) {
                this.failure ??= new Error(`compressing the dump failed: ${next.error.message}`);
                this.order.length = 0;
                return;
            } else if (next.out) {
                for (const b of next.out) {
                    this.o.emit(b);
                }
            } else {
                return;
            }
            this.order.shift();
        }
    }

    /** Resolves once no piece waits to start and fewer than `threads` are being deflated; rejects if one failed. */
    async ready(): Promise<void> {
        while ((this.running >= this.o.threads || this.pending.length > 0) && !this.failure) {
            await new Promise<void>((resolve) => this.waiting.push(resolve));
        }
        if (this.failure) {
            throw this.failure;
        }
    }

    /** Resolves once everything submitted has been written out. */
    async flush(): Promise<void> {
        if (this.open) {
            throw new Error("a zlib stream is still open");
        }
        while ((this.running > 0 || this.pending.length > 0) && !this.failure) {
            await new Promise<void>((resolve) => this.waiting.push(resolve));
        }
        if (this.failure) {
            throw this.failure;
        }
        this.pump();
    }
}
