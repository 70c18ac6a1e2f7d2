/**
 * Counts a custom-format dump as it streams: header and table of contents first, then one data
 * block per entry with data (pg_backup_custom.c): a type byte (1: table data, 3: large objects),
 * the entry's id, then chunks — an int length and that many bytes — ended by a zero length. Table
 * data chunks are one zlib stream (or raw COPY text with --compress=0); a large-object block is a
 * list of (oid, chunks) ended by oid 0. A stream that stops anywhere but between two blocks, or
 * before every entry's block has passed, is incomplete.
 */
import { ArchiveEntry, ArchiveToc, BLOCK, DumpFormatError, manifestToc, NeedMoreData, parseArchiveToc, readInt } from "./archive";
import { archiveInfo, dataEntries, DumpCounts, DumpReader, entryLabel, tableCounts } from "./counts";
import type { ArchiveListener } from "./recompress";
import { Encoding, PieceJoiner, RowSink, rowSink } from "./rowsink";

/** A table of contents larger than this is not a pg_dump header: refuse instead of buffering. */
const MAX_TOC_BYTES = 1024 * 1024 * 1024;

type State = "type" | "id" | "len" | "body" | "oid";

/** Collects the head of an archive until its header and TOC parse; amortized linear. */
export class TocCollector {
    private parts: Buffer[] = [];
    private length = 0;
    private nextTry = 1024;

    /** Adds bytes; returns the parsed TOC, the bytes it was read from, and the bytes after it once complete. */
    push(chunk: Buffer, force = false): { toc: ArchiveToc; head: Buffer; rest: Buffer } | undefined {
        // A copy: the caller's buffer is reused once its push is done.
        this.parts.push(Buffer.from(chunk));
        this.length += chunk.length;
        if (this.length < this.nextTry && !force) {
            return undefined;
        }
        const all = Buffer.concat(this.parts, this.length);
        this.parts = [all];
        try {
            const toc = parseArchiveToc(all);
            return { toc, head: all.subarray(0, toc.end), rest: all.subarray(toc.end) };
        } catch (e) {
            if (!(e instanceof NeedMoreData)) {
                throw e;
            }
            if (this.length > MAX_TOC_BYTES) {
                throw new DumpFormatError(`no complete table of contents in the first ${MAX_TOC_BYTES} bytes: not a pg_dump archive`);
            }
            this.nextTry = this.length * 2;
            return undefined;
        }
    }

    get bytes(): number {
        return this.length;
    }
}

export class CustomDumpReader implements DumpReader {
    private readonly head = new TocCollector();
    private toc: ArchiveToc | undefined;
    private byId = new Map<number, ArchiveEntry>();
    private encoding: Encoding = "none";
    private state: State = "type";
    /** Bytes of an int (or the type byte) split across pushes. */
    private carry: Buffer = Buffer.alloc(0);
    private offset = 0;
    private block: { entry: ArchiveEntry; kind: number; sink?: RowSink; pieces: Buffer[] } | undefined;
    private chunkLeft = 0;
    private readonly rows = new Map<number, Promise<number>>();
    /** Writes of the current push: awaited before the push resolves (its buffer is then reused). */
    private writes: Promise<void>[] = [];
    private readonly joiner = new PieceJoiner();
    private readonly seen = new Set<number>();
    private largeObjects = 0;

    /** `listener`: told the archive's structure as it is read (to rebuild the stream: recompress.ts). */
    constructor(private readonly listener?: ArchiveListener) {}

    /** Reads `chunk`; once this resolves nothing here refers to it any more (the caller reuses it). */
    async push(chunk: Buffer): Promise<void> {
        this.joiner.reset();
        if (!this.toc) {
            const got = this.head.push(chunk);
            if (!got) {
                return;
            }
            this.start(got.toc, got.head);
            chunk = got.rest;
        }
        this.consume(chunk);
        this.flush();
        const writes = this.writes;
        this.writes = [];
        await Promise.all(writes);
        await this.listener?.ready();
    }

    private start(toc: ArchiveToc, head: Buffer): void {
        if (toc.header.format !== "custom") {
            throw new DumpFormatError(`expected a custom-format dump, found a ${toc.header.format}-format header`);
        }
        if (toc.header.compression === "lz4" || toc.header.compression === "zstd") {
            throw new DumpFormatError(`the dump is compressed with ${toc.header.compression}: rows are counted in gzip-compressed or uncompressed dumps only`);
        }
        this.encoding = toc.header.compression === "gzip" ? "zlib" : "none";
        this.toc = toc;
        for (const e of dataEntries(toc.entries)) {
            this.byId.set(e.id, e);
        }
        this.offset = toc.end;
        this.listener?.head(head, toc);
    }

    /** Reads an int split across pushes; undefined when `buf` ends first. */
    private int(buf: Buffer, pos: { at: number }): number | undefined {
        const need = 1 + this.toc!.header.intSize;
        if (this.carry.length === 0 && buf.length - pos.at >= need) {
            const v = readInt(buf, pos.at, this.toc!.header.intSize);
            pos.at += need;
            return v;
        }
        const take = Math.min(need - this.carry.length, buf.length - pos.at);
        this.carry = Buffer.concat([this.carry, buf.subarray(pos.at, pos.at + take)]);
        pos.at += take;
        if (this.carry.length < need) {
            return undefined;
        }
        const v = readInt(this.carry, 0, this.toc!.header.intSize);
        this.carry = Buffer.alloc(0);
        return v;
    }

    private consume(buf: Buffer): void {
        const pos = { at: 0 };
        while (pos.at < buf.length) {
            const before = pos.at;
            switch (this.state) {
                case "type": {
                    const kind = buf[pos.at++];
                    if (kind !== BLOCK.DATA && kind !== BLOCK.BLOBS) {
                        throw new DumpFormatError(`unexpected data block type ${kind} at byte ${this.offset}: not a pg_dump data block (corrupt dump?)`);
                    }
                    this.block = { entry: undefined as unknown as ArchiveEntry, kind, pieces: [] };
                    this.state = "id";
                    break;
                }
                case "id": {
                    const id = this.int(buf, pos);
                    if (id === undefined) {
                        break;
                    }
                    this.openBlock(id);
                    break;
                }
                case "len": {
                    const len = this.int(buf, pos);
                    if (len === undefined) {
                        break;
                    }
                    if (len < 0) {
                        throw new DumpFormatError(`negative chunk length in ${entryLabel(this.block!.entry)}: a corrupt dump`);
                    }
                    if (len > 0) {
                        this.chunkLeft = len;
                        this.state = "body";
                    } else {
                        this.listener?.dataEnd();
                        if (this.block!.kind === BLOCK.DATA) {
                            this.closeDataBlock();
                        } else {
                            this.state = "oid";
                        }
                    }
                    break;
                }
                case "body": {
                    const n = Math.min(this.chunkLeft, buf.length - pos.at);
                    if (this.block!.kind === BLOCK.DATA) {
                        this.block!.pieces.push(buf.subarray(pos.at, pos.at + n));
                    }
                    this.listener?.data(buf.subarray(pos.at, pos.at + n));
                    pos.at += n;
                    this.chunkLeft -= n;
                    if (this.chunkLeft === 0) {
                        this.state = "len";
                    }
                    break;
                }
                case "oid": {
                    const oid = this.int(buf, pos);
                    if (oid === undefined) {
                        break;
                    }
                    if (oid === 0) {
                        this.listener?.largeObjectsEnd();
                        this.block = undefined;
                        this.state = "type";
                    } else {
                        this.listener?.largeObject(oid);
                        this.largeObjects++;
                        this.state = "len";
                    }
                    break;
                }
            }
            this.offset += pos.at - before;
        }
    }

    private openBlock(id: number): void {
        const entry = this.byId.get(id);
        if (!entry) {
            throw new DumpFormatError(`a data block for entry ${id}, which the table of contents does not list with data (corrupt dump?)`);
        }
        if (this.seen.has(id)) {
            throw new DumpFormatError(`a second data block for ${entryLabel(entry)} (corrupt dump?)`);
        }
        const expected = entry.desc === "BLOBS" ? BLOCK.BLOBS : BLOCK.DATA;
        if (this.block!.kind !== expected) {
            throw new DumpFormatError(`${entryLabel(entry)} has a data block of type ${this.block!.kind}, expected ${expected}`);
        }
        this.seen.add(id);
        this.block!.entry = entry;
        this.listener?.block(this.block!.kind, id);
        if (expected === BLOCK.DATA) {
            this.block!.sink = rowSink(this.encoding, entryLabel(entry));
            this.state = "len";
        } else {
            this.state = "oid";
        }
    }

    /** Hands the pieces gathered in this push to the block's sink as one write. */
    private flush(): void {
        const b = this.block;
        if (b?.sink && b.pieces.length > 0) {
            this.writes.push(b.sink.write(this.joiner.join(b.pieces)));
            b.pieces = [];
        }
    }

    private closeDataBlock(): void {
        this.flush();
        const b = this.block!;
        const counted = b.sink!.end();
        counted.catch(() => undefined);
        this.rows.set(b.entry.id, counted);
        this.block = undefined;
        this.state = "type";
    }

    async end(): Promise<DumpCounts> {
        if (!this.toc) {
            const got = this.head.push(Buffer.alloc(0), true);
            if (!got) {
                throw new DumpFormatError(
                    this.head.bytes === 0 ? "the dump is empty" : `the dump ends inside its header or table of contents (after ${this.head.bytes} bytes): it was cut short`,
                );
            }
            this.start(got.toc, got.head);
            this.consume(got.rest);
        }
        if (this.state !== "type" || this.carry.length > 0) {
            const where = this.block?.entry ? ` inside the data of ${entryLabel(this.block.entry)}` : " inside a block header";
            throw new DumpFormatError(`the dump stops mid-block${where}, at byte ${this.offset}: its output was cut short`);
        }
        const missing = [...this.byId.values()].filter((e) => !this.seen.has(e.id));
        if (missing.length > 0) {
            throw new DumpFormatError(
                `the dump ends before the data of ${missing.length} entr${missing.length === 1 ? "y" : "ies"} (first: ${entryLabel(missing[0])}), at byte ${this.offset}: its output was cut short`,
            );
        }
        await this.listener?.end();
        const toc = this.toc!;
        const rows = new Map<number, number>();
        for (const [id, p] of this.rows) {
            rows.set(id, await p);
        }
        return {
            format: "custom",
            tables: tableCounts(toc.entries, rows),
            largeObjects: this.largeObjects,
            toc: manifestToc(toc.entries),
            archive: archiveInfo(toc.header),
        };
    }
}
