/**
 * The header and table of contents of a pg_dump archive (custom format, and the `toc.dat` of the
 * directory format), read the way pg_backup_archiver.c writes them (WriteHead, WriteToc).
 *
 * Only archive versions 1.14 (pg_dump 12–15), 1.15 (pg_dump 16: the header names the compression
 * algorithm instead of a zlib level) and 1.16 (pg_dump 17: a `relkind` in every entry, BLOB
 * METADATA entries, several BLOBS entries) are read; anything else is refused, never guessed at.
 * Pure: buffers in, values out.
 */
import type { TocEntry } from "../manifest";
import { clientEncodingOf, nameDecoder, redecode } from "./encoding";

/** Thrown when the bytes given end before the structure does: give more and try again. */
export class NeedMoreData extends Error {
    constructor() {
        super("more data needed");
    }
}

/** A dump that is not what pg_dump writes, or one this reader must not guess at. */
export class DumpFormatError extends Error {}

export const MIN_VERSION = [1, 14] as const;
export const MAX_VERSION = [1, 16] as const;

/** pg_backup.h's ArchiveFormat codes as they appear in the header. */
const FORMAT_CODES: Record<number, ArchiveHeader["format"]> = { 1: "custom", 3: "tar", 5: "directory" };
/** pg_compress_algorithm (common/compression.h) as archive 1.15+ stores it. */
const ALGORITHMS: Record<number, Compression> = { 0: "none", 1: "gzip", 2: "lz4", 3: "zstd" };

export type Compression = "none" | "gzip" | "lz4" | "zstd";

export interface ArchiveHeader {
    /** e.g. "1.14.0". */
    version: string;
    minor: number;
    intSize: number;
    offSize: number;
    /** `tar` is what a directory-format toc.dat says (pg_dump writes the tar code there). */
    format: "custom" | "tar" | "directory";
    compression: Compression;
    /** The database pg_dump read, and the server's and pg_dump's versions. */
    database: string;
    serverVersion: string;
    pgDumpVersion: string;
}

/** The type byte of a custom-format data block (pg_backup_custom.c: BLK_DATA, BLK_BLOBS). */
export const BLOCK = { DATA: 1, BLOBS: 3 } as const;

/** The data offset flags of custom-format entries (K_OFFSET_*). */
export const OFFSET = { POS_NOT_SET: 1, POS_SET: 2, NO_DATA: 3 } as const;

/** A TOC entry with what a reader of the data needs beside the manifest's fields. */
export interface ArchiveEntry extends TocEntry {
    /** pg_dump had a data dumper for it: a data block (custom) or file (directory) follows. */
    hadDumper: boolean;
    /** The COPY statement of a TABLE DATA entry; empty when the data is INSERT statements. */
    copyStmt: string;
    /** Custom format: K_OFFSET_* flag. */
    dataState?: number;
    /** Directory/tar format: the data file's name (without the compression suffix). */
    filename?: string;
}

export interface ArchiveToc {
    header: ArchiveHeader;
    entries: ArchiveEntry[];
    /** Offset of the first byte after the TOC: where the custom format's data blocks start. */
    end: number;
}

/** Reads the archive's primitive values (ReadInt, ReadStr, ReadOffset) from one buffer. */
export class Cursor {
    pos = 0;
    intSize = 4;
    offSize = 8;
    constructor(private readonly buf: Buffer) {}

    byte(): number {
        if (this.pos >= this.buf.length) {
            throw new NeedMoreData();
        }
        return this.buf[this.pos++];
    }

    bytes(n: number): Buffer {
        if (this.pos + n > this.buf.length) {
            throw new NeedMoreData();
        }
        const out = this.buf.subarray(this.pos, this.pos + n);
        this.pos += n;
        return out;
    }

    /** WriteInt: a sign byte, then intSize bytes, least significant first. */
    int(): number {
        return readInt(this.bytes(1 + this.intSize), 0, this.intSize);
    }

    /**
     * WriteStr: an int length (-1 for NULL), then the bytes. TOC strings are read byte for byte
     * (latin1) and re-read with the dump's encoding once its ENCODING entry is known (encoding.ts).
     */
    str(encoding: "latin1" | "utf8" = "latin1"): string | null {
        const len = this.int();
        if (len < 0) {
            return null;
        }
        if (len > 1 << 30) {
            throw new DumpFormatError(`a string of ${len} bytes in the table of contents: not a pg_dump archive, or a corrupt one`);
        }
        return this.bytes(len).toString(encoding);
    }

    /** WriteOffset: a flag byte, then offSize bytes. Only the flag matters to a stream reader. */
    offsetFlag(): number {
        const flag = this.byte();
        this.bytes(this.offSize);
        if (flag !== OFFSET.POS_NOT_SET && flag !== OFFSET.POS_SET && flag !== OFFSET.NO_DATA) {
            throw new DumpFormatError(`unexpected data offset flag ${flag} in the table of contents`);
        }
        return flag;
    }
}

/** An archive int at `at`: sign byte then `intSize` little-endian bytes. Exact up to 2^53. */
export function readInt(buf: Buffer, at: number, intSize: number): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < intSize; i++) {
        value += buf[at + 1 + i] * scale;
        scale *= 256;
    }
    return buf[at] ? -value : value;
}

function header(c: Cursor): ArchiveHeader {
    if (c.bytes(5).toString("latin1") !== "PGDMP") {
        throw new DumpFormatError("not a pg_dump archive (no PGDMP magic at the start)");
    }
    const major = c.byte();
    const minor = c.byte();
    const rev = c.byte();
    const version = `${major}.${minor}.${rev}`;
    if (major !== 1 || minor < MIN_VERSION[1] || minor > MAX_VERSION[1]) {
        throw new DumpFormatError(
            `pg_dump archive version ${version} is not supported: kx-backup reads ${MIN_VERSION.join(".")} to ${MAX_VERSION.join(".")} ` +
                "(pg_dump 12 to 17); dumps from other versions are refused rather than misread",
        );
    }
    c.intSize = c.byte();
    c.offSize = c.byte();
    if (c.intSize < 1 || c.intSize > 8 || c.offSize < 1 || c.offSize > 8) {
        throw new DumpFormatError(`implausible integer sizes in the archive header (int ${c.intSize}, offset ${c.offSize})`);
    }
    const code = c.byte();
    const format = FORMAT_CODES[code];
    if (!format) {
        throw new DumpFormatError(`archive format code ${code} is not custom, tar or directory`);
    }
    let compression: Compression;
    if (minor >= 15) {
        const algorithm = c.byte();
        compression = ALGORITHMS[algorithm];
        if (!compression) {
            throw new DumpFormatError(`unknown compression algorithm ${algorithm} in the archive header`);
        }
    } else {
        // Before 1.15 the header holds a zlib level: 0 is none, anything else (-1: default) is zlib.
        compression = c.int() === 0 ? "none" : "gzip";
    }
    for (let i = 0; i < 7; i++) {
        c.int(); // creation time: sec, min, hour, mday, mon, year, isdst
    }
    const database = c.str("utf8") ?? "";
    const serverVersion = c.str("utf8") ?? "";
    const pgDumpVersion = c.str("utf8") ?? "";
    return { version, minor, intSize: c.intSize, offSize: c.offSize, format, compression, database, serverVersion, pgDumpVersion };
}

function entry(c: Cursor, h: ArchiveHeader, found: { encoding?: string }): ArchiveEntry {
    const id = c.int();
    if (id <= 0) {
        throw new DumpFormatError(`entry id ${id} out of range: a corrupt table of contents`);
    }
    const hadDumper = c.int() !== 0;
    c.str(); // catalog table oid
    c.str(); // object oid
    const name = c.str() ?? "";
    const desc = c.str() ?? "";
    c.int(); // section
    const definition = c.str();
    if (desc === "ENCODING" && definition) {
        found.encoding = clientEncodingOf(definition);
    }
    c.str(); // drop statement
    const copyStmt = c.str() ?? "";
    const schema = c.str() ?? "";
    c.str(); // tablespace
    c.str(); // table access method (1.14+)
    if (h.minor >= 16) {
        c.int(); // relkind
    }
    const owner = c.str() ?? "";
    c.str(); // "false": WITH OIDS, long gone
    while (c.str() !== null) {
        // dependencies, ended by a NULL string
    }
    const e: ArchiveEntry = { id, desc, schema, name, owner, hadDumper, copyStmt };
    if (h.format === "custom") {
        e.dataState = c.offsetFlag();
    } else {
        const file = c.str();
        if (file) {
            e.filename = file;
        }
    }
    return e;
}

/**
 * Parses the header and the whole table of contents at the start of `buf`. Throws NeedMoreData
 * when `buf` ends first, DumpFormatError when it is not a readable archive.
 */
export function parseArchiveToc(buf: Buffer): ArchiveToc {
    const c = new Cursor(buf);
    const h = header(c);
    const count = c.int();
    if (count < 0 || count > 50_000_000) {
        throw new DumpFormatError(`implausible number of TOC entries (${count})`);
    }
    const entries: ArchiveEntry[] = [];
    const found: { encoding?: string } = {};
    for (let i = 0; i < count; i++) {
        entries.push(entry(c, h, found));
    }
    const decode = nameDecoder(found.encoding);
    for (const e of entries) {
        for (const field of ["desc", "schema", "name", "owner", "copyStmt", "filename"] as const) {
            const v = e[field];
            if (v) {
                e[field] = redecode(v, decode);
            }
        }
    }
    return { header: h, entries, end: c.pos };
}

/** The manifest's view of the entries: id, kind, schema, name, owner. */
export function manifestToc(entries: readonly ArchiveEntry[]): TocEntry[] {
    return entries.map((e) => ({ id: e.id, desc: e.desc, schema: e.schema, name: e.name, owner: e.owner }));
}
