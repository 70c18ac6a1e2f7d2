/**
 * The custom-format archive pg_dump would have written with zlib compression, built from the
 * uncompressed one it writes with `--compress=0`, compressing on several threads at once.
 *
 * Why: pg_dump compresses on one core, and that is most of a backup's time (a 620 MiB database:
 * 18 s with compression, under 4 s without). The archive's structure is kept byte for byte — the
 * header (but for its compression field), the table of contents, every block's type and entry
 * id, each large object's oid — and only each data stream is replaced by its zlib stream, which
 * is what pg_restore reads in an archive whose header says zlib (pg_backup_custom.c,
 * compress_io.c / compress_gzip.c: one zlib stream per table and per large object, in chunks of
 * any size, none empty).
 *
 * Only archives written to a pipe can be rewritten: a file's TOC carries data offsets that would
 * point into the old bytes (refused, never rewritten). The caller (CustomDumpReader) parses; this
 * only writes.
 */
import { ArchiveToc, BLOCK, DumpFormatError, OFFSET } from "./archive";
import { PieceDeflater } from "./zpieces";

/** What CustomDumpReader tells whoever rebuilds the stream, in stream order. */
export interface ArchiveListener {
    /** The header and TOC: `bytes` exactly as read (valid only during the call). */
    head(bytes: Buffer, toc: ArchiveToc): void;
    /** A data block starts: its type byte and entry id were read. */
    block(kind: number, id: number): void;
    /** A large object of the current block starts (its oid was read). */
    largeObject(oid: number): void;
    /** Payload bytes of the current table or large object (valid only during the call). */
    data(bytes: Buffer): void;
    /** The current table's or large object's data ended (its zero length was read). */
    dataEnd(): void;
    /** The current large-object block ended (its zero oid was read). */
    largeObjectsEnd(): void;
    /** Resolves when the listener can take more (backpressure); rejects once it has failed. */
    ready(): Promise<void>;
    /** The stream ended: resolves once everything has been written out. */
    end(): Promise<void>;
}

export interface RecompressOptions {
    /** zlib level (pg_dump's default: -1, zlib's 6). */
    level: number;
    /** Pieces deflated at once. */
    threads: number;
    /** Input bytes per piece. */
    pieceBytes?: number;
    /** The rebuilt archive, in order; each buffer is the caller's to keep. */
    emit: (bytes: Buffer) => void;
}

/** pg_backup_archiver.h: the compression field sits after magic (5), version (3), int size, offset size and format. */
const COMPRESSION_AT = 11;
const ZLIB_ALGORITHM = 1;

/** An archive int (WriteInt): a sign byte, then `intSize` bytes, least significant first. Pure. */
export function archiveInt(value: number, intSize: number): Buffer {
    const out = Buffer.alloc(1 + intSize);
    out[0] = value < 0 ? 1 : 0;
    let v = Math.abs(value);
    for (let i = 0; i < intSize; i++) {
        out[1 + i] = v % 256;
        v = Math.floor(v / 256);
    }
    if (v !== 0) {
        throw new RangeError(`${value} does not fit in a ${intSize}-byte archive int`);
    }
    return out;
}

/**
 * The header and TOC of an uncompressed archive, marked zlib-compressed at `level`. Refuses what
 * it must not rewrite: a compressed archive, or one whose TOC points at data offsets. Pure.
 */
export function compressedHead(bytes: Buffer, toc: ArchiveToc, level: number): Buffer {
    const h = toc.header;
    if (h.format !== "custom") {
        throw new DumpFormatError(`only a custom-format archive can be recompressed, not ${h.format}`);
    }
    if (h.compression !== "none") {
        throw new DumpFormatError(`the archive is already ${h.compression}-compressed: expected pg_dump --compress=0 output`);
    }
    const placed = toc.entries.find((e) => e.dataState === OFFSET.POS_SET);
    if (placed) {
        throw new DumpFormatError(`the archive's table of contents records data offsets (entry ${placed.id}): it was written to a file, and rewriting it would leave them pointing at the wrong bytes`);
    }
    const out = Buffer.from(bytes.subarray(0, toc.end));
    if (h.minor >= 15) {
        // Archive 1.15+: one byte naming the algorithm (pg_compress_algorithm); 0 is none.
        out[COMPRESSION_AT] = ZLIB_ALGORITHM;
    } else {
        // Archive 1.14: a zlib level as an int; 0 is none.
        archiveInt(level, h.intSize).copy(out, COMPRESSION_AT);
    }
    return out;
}

/** Rebuilds an uncompressed custom-format archive as a zlib-compressed one (see the module comment). */
export class ArchiveRecompressor implements ArchiveListener {
    private deflater: PieceDeflater | undefined;
    private intSize = 4;

    constructor(private readonly o: RecompressOptions) {
        if (!Number.isInteger(o.level) || o.level < -1 || o.level > 9 || o.level === 0) {
            throw new RangeError(`zlib level ${o.level}: expected 1 to 9, or -1 for zlib's default`);
        }
    }

    private get z(): PieceDeflater {
        if (!this.deflater) {
            throw new DumpFormatError("archive data before its table of contents");
        }
        return this.deflater;
    }

    private int(v: number): Buffer {
        return archiveInt(v, this.intSize);
    }

    head(bytes: Buffer, toc: ArchiveToc): void {
        const head = compressedHead(bytes, toc, this.o.level);
        this.intSize = toc.header.intSize;
        this.deflater = new PieceDeflater({
            level: this.o.level,
            threads: this.o.threads,
            pieceBytes: this.o.pieceBytes ?? 1024 * 1024,
            // Each piece's output is one chunk: its length, then its bytes (never empty: every piece
            // ends with a sync flush or the final block).
            frame: (parts) => [this.int(parts.reduce((n, p) => n + p.length, 0)), ...parts],
            emit: this.o.emit,
        });
        this.o.emit(head);
    }

    block(kind: number, id: number): void {
        this.z.literal(Buffer.concat([Buffer.from([kind]), this.int(id)]));
        // A table's data is one stream; a large-object block holds one per object (largeObject()).
        if (kind === BLOCK.DATA) {
            this.z.begin();
        }
    }

    largeObject(oid: number): void {
        this.z.literal(this.int(oid));
        this.z.begin();
    }

    data(bytes: Buffer): void {
        this.z.write(bytes);
    }

    dataEnd(): void {
        this.z.end();
        this.z.literal(this.int(0));
    }

    largeObjectsEnd(): void {
        this.z.literal(this.int(0));
    }

    ready(): Promise<void> {
        return this.deflater ? this.deflater.ready() : Promise.resolve();
    }

    async end(): Promise<void> {
        await this.deflater?.flush();
    }
}
