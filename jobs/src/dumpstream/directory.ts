/**
 * Counts a directory-format dump as the job streams it: the tar of the dump directory. `toc.dat`
 * holds the header and table of contents (the custom format's, with each entry's data file name
 * instead of an offset); each table's data is `NNNN.dat.gz` (gzip; `NNNN.dat` with
 * --compress=0); large objects are listed one per line in `blobs.toc` (pg_dump 12–16) or
 * `blobs_NNNN.toc` (17), their contents in `blob_OID.dat[.gz]` (not read).
 *
 * Counted as it passes rather than from the files on disk: the counts then describe exactly the
 * bytes that were stored, a cut-short tar is caught, and nothing is read twice.
 */
import { TarHeaderReader } from "../tar";
import { ArchiveToc, DumpFormatError, manifestToc } from "./archive";
import { archiveInfo, dataEntries, DumpCounts, DumpReader, entryLabel, tableCounts } from "./counts";
import { CopyRowCounter } from "./copyrows";
import { TocCollector } from "./custom";
import { PieceJoiner, RowSink, rowSink } from "./rowsink";

interface FileCount {
    /** Rows (table data) or lines (large-object lists). */
    count: Promise<number>;
    suffix: string;
}

export class DirectoryDumpReader implements DumpReader {
    private readonly tar: TarHeaderReader;
    private toc: ArchiveToc | undefined;
    private tocBytes: TocCollector | undefined;
    private current: { name: string; sink?: RowSink; lines?: CopyRowCounter; pieces: Buffer[] } | undefined;
    /** By the name toc.dat records (suffix stripped). */
    private readonly files = new Map<string, FileCount>();
    private failure: Error | undefined;
    /** Writes of the current push: awaited before the push resolves (its buffer is then reused). */
    private writes: Promise<void>[] = [];
    private readonly joiner = new PieceJoiner();

    constructor() {
        this.tar = new TarHeaderReader({
            entry: (e) => this.entry(e.name, e.type),
            data: (chunk) => this.data(chunk),
            fileEnd: () => this.fileEnd(),
        });
    }

    private entry(rawName: string, type: string): void {
        const name = rawName.replace(/^(\.\/)+/, "");
        this.current = undefined;
        if (type !== "file" || name.includes("/")) {
            return;
        }
        if (name === "toc.dat") {
            this.tocBytes = new TocCollector();
            this.current = { name, pieces: [] };
            return;
        }
        const data = /^(\d+\.dat)(\.gz|\.lz4|\.zst)?$/.exec(name);
        if (data) {
            const suffix = data[2] ?? "";
            if (suffix === ".lz4" || suffix === ".zst") {
                throw new DumpFormatError(`${name} is compressed with ${suffix === ".lz4" ? "lz4" : "zstd"}: rows are counted in gzip-compressed or uncompressed dumps only`);
            }
            this.current = { name: data[1], sink: rowSink(suffix ? "gzip" : "none", name), pieces: [] };
            this.files.set(data[1], { count: Promise.resolve(0), suffix });
            return;
        }
        if (/^blobs(_\d+)?\.toc$/.test(name)) {
            this.current = { name, lines: new CopyRowCounter(name), pieces: [] };
            this.files.set(name, { count: Promise.resolve(0), suffix: "" });
        }
    }

    private data(chunk: Buffer): void {
        const c = this.current;
        if (!c) {
            return;
        }
        if (c.name === "toc.dat") {
            this.tocBytes!.push(chunk);
        } else if (c.lines) {
            c.lines.push(chunk);
        } else {
            c.pieces.push(chunk);
        }
    }

    private fileEnd(): void {
        const c = this.current;
        if (!c) {
            return;
        }
        if (c.name === "toc.dat") {
            const got = this.tocBytes!.push(Buffer.alloc(0), true);
            if (!got) {
                throw new DumpFormatError("toc.dat ends inside its table of contents: the dump directory is incomplete");
            }
            if (got.toc.header.format !== "tar" && got.toc.header.format !== "directory") {
                throw new DumpFormatError(`toc.dat has a ${got.toc.header.format}-format header: not a directory-format dump`);
            }
            this.toc = got.toc;
        } else if (c.lines) {
            const lines = c.lines;
            this.files.get(c.name)!.count = Promise.resolve().then(() => lines.finish());
        } else {
            this.flush();
            const counted = c.sink!.end();
            counted.catch(() => undefined);
            this.files.get(c.name)!.count = counted;
        }
        this.current = undefined;
    }

    private flush(): void {
        const c = this.current;
        if (c?.sink && c.pieces.length > 0) {
            this.writes.push(c.sink.write(this.joiner.join(c.pieces)));
            c.pieces = [];
        }
    }

    /** Reads `chunk`; once this resolves nothing here refers to it any more (the caller reuses it). */
    async push(chunk: Buffer): Promise<void> {
        if (this.failure) {
            throw this.failure;
        }
        this.joiner.reset();
        try {
            this.tar.push(chunk);
        } catch (e) {
            this.failure = e as Error;
            throw e;
        }
        this.flush();
        const writes = this.writes;
        this.writes = [];
        await Promise.all(writes);
    }

    async end(): Promise<DumpCounts> {
        if (!this.tar.complete) {
            const inside = this.current ? ` inside ${this.current.name}` : "";
            throw new DumpFormatError(`the directory dump's tar stops${inside} before its end: the stream was cut short`);
        }
        if (!this.toc) {
            throw new DumpFormatError("the directory dump has no toc.dat: not a pg_dump directory, or an incomplete one");
        }
        const toc = this.toc;
        if (toc.header.compression === "lz4" || toc.header.compression === "zstd") {
            throw new DumpFormatError(`the dump is compressed with ${toc.header.compression}: rows are counted in gzip-compressed or uncompressed dumps only`);
        }
        const rows = new Map<number, number>();
        let largeObjects = 0;
        for (const e of dataEntries(toc.entries)) {
            const file = e.filename ? this.files.get(e.filename) : undefined;
            if (!file) {
                throw new DumpFormatError(`the directory dump has no data file ${e.filename ?? "(none named)"} for ${entryLabel(e)}: it is incomplete`);
            }
            const n = await file.count;
            if (e.desc === "BLOBS") {
                largeObjects += n;
            } else {
                rows.set(e.id, n);
            }
        }
        return { format: "directory", tables: tableCounts(toc.entries, rows), largeObjects, toc: manifestToc(toc.entries), archive: archiveInfo(toc.header) };
    }
}
