/**
 * Reads a tar stream incrementally (ustar, GNU long names, pax): the entries' headers, and, for
 * whoever asks, each regular file's contents as they pass. Memory stays at one header block plus
 * what the caller keeps, whatever the archive size. Used to refuse unsafe archives before
 * extracting them, and to count rows in directory-format dumps as they are streamed.
 */

export interface TarEntry {
    name: string;
    type: "file" | "directory" | "symlink" | "hardlink" | "char-device" | "block-device" | "fifo" | "other";
    linkname: string;
    /** Permission bits, setuid/setgid/sticky included. */
    mode: number;
}

const TYPES: Record<string, TarEntry["type"]> = { "0": "file", "7": "file", "5": "directory", "2": "symlink", "1": "hardlink", "3": "char-device", "4": "block-device", "6": "fifo" };

/** Receives each entry and, for regular files, their bytes in order. */
export interface TarVisitor {
    entry(e: TarEntry, size: number): void;
    /** A piece of the current regular file's contents. */
    data(chunk: Buffer): void;
    /** The current regular file's last byte has passed. */
    fileEnd(): void;
}

function cString(buf: Buffer, start: number, length: number): string {
    const slice = buf.subarray(start, start + length);
    const end = slice.indexOf(0);
    return slice.subarray(0, end < 0 ? slice.length : end).toString("utf8");
}

function octal(buf: Buffer, start: number, length: number): number {
    if (buf[start] & 0x80) {
        // GNU base-256 for large sizes.
        let n = 0;
        for (let i = start + 1; i < start + length; i++) {
            n = n * 256 + buf[i];
        }
        return n;
    }
    return parseInt(cString(buf, start, length).trim() || "0", 8);
}

function paxRecords(data: Buffer): Record<string, string> {
    const out: Record<string, string> = {};
    let i = 0;
    while (i < data.length) {
        const space = data.indexOf(0x20, i);
        if (space < 0) {
            break;
        }
        const len = Number(data.subarray(i, space).toString());
        if (!len) {
            break;
        }
        const record = data.subarray(space + 1, i + len - 1).toString("utf8");
        const eq = record.indexOf("=");
        out[record.slice(0, eq)] = record.slice(eq + 1);
        i += len;
    }
    return out;
}

export class TarHeaderReader {
    readonly entries: TarEntry[] = [];
    private pending: Buffer = Buffer.alloc(0);
    private skip = 0;
    /** Bytes of the current regular file still to hand to the visitor (the rest of `skip` is padding). */
    private fileLeft = 0;
    private collect: { flag: string; need: number; parts: Buffer[] } | undefined;
    private longName: string | undefined;
    private longLink: string | undefined;
    private pax: Record<string, string> = {};
    private ended = false;

    constructor(private readonly visitor?: TarVisitor) {}

    /** The end-of-archive block has been read: the stream was not cut short. */
    get complete(): boolean {
        return this.ended;
    }

    /** Reads `chunk`; keeps nothing that points into it (callers may reuse it once this returns). */
    push(chunk: Buffer): void {
        this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
        this.read();
        if (this.pending.length > 0 && this.pending.buffer === chunk.buffer) {
            this.pending = Buffer.from(this.pending);
        }
    }

    private read(): void {
        while (!this.ended) {
            if (this.skip > 0) {
                const n = Math.min(this.skip, this.pending.length);
                if (this.collect && this.collect.need > 0) {
                    const take = Math.min(n, this.collect.need);
                    this.collect.parts.push(Buffer.from(this.pending.subarray(0, take)));
                    this.collect.need -= take;
                }
                if (this.fileLeft > 0 && n > 0) {
                    const take = Math.min(n, this.fileLeft);
                    this.fileLeft -= take;
                    this.visitor!.data(this.pending.subarray(0, take));
                    if (this.fileLeft === 0) {
                        this.visitor!.fileEnd();
                    }
                }
                this.pending = this.pending.subarray(n);
                this.skip -= n;
                if (this.skip > 0) {
                    return;
                }
                this.finishCollect();
            }
            if (this.pending.length < 512) {
                return;
            }
            const header = this.pending.subarray(0, 512);
            this.pending = this.pending.subarray(512);
            if (header.every((b) => b === 0)) {
                this.ended = true;
                return;
            }
            this.header(header);
        }
    }

    private header(header: Buffer): void {
        const size = octal(header, 124, 12);
        const flag = String.fromCharCode(header[156] || 0x30);
        this.skip = Math.ceil(size / 512) * 512;
        if (flag === "L" || flag === "K" || flag === "x") {
            this.collect = { flag, need: size, parts: [] };
            if (this.skip === 0) {
                this.finishCollect();
            }
            return;
        }
        if (flag === "g") {
            return;
        }
        const prefix = header.subarray(257, 262).toString() === "ustar" ? cString(header, 345, 155) : "";
        const shortName = cString(header, 0, 100);
        const type = TYPES[flag] ?? "other";
        const entry: TarEntry = {
            name: this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${shortName}` : shortName),
            type,
            linkname: this.pax.linkpath ?? this.longLink ?? cString(header, 157, 100),
            mode: octal(header, 100, 8) & 0o7777,
        };
        this.entries.push(entry);
        this.longName = undefined;
        this.longLink = undefined;
        this.pax = {};
        if (this.visitor) {
            this.visitor.entry(entry, size);
            if (type === "file") {
                this.fileLeft = size;
                if (size === 0) {
                    this.visitor.fileEnd();
                }
            }
        }
    }

    private finishCollect(): void {
        if (!this.collect) {
            return;
        }
        const data = Buffer.concat(this.collect.parts);
        if (this.collect.flag === "L") {
            this.longName = cString(data, 0, data.length);
        } else if (this.collect.flag === "K") {
            this.longLink = cString(data, 0, data.length);
        } else {
            this.pax = paxRecords(data);
        }
        this.collect = undefined;
    }
}

/** The entries of a whole (decompressed) tar. Pure. */
export function parseTarEntries(tar: Buffer): TarEntry[] {
    const reader = new TarHeaderReader();
    reader.push(tar);
    return reader.entries;
}
