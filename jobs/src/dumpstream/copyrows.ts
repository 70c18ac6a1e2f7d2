/**
 * Counts the rows of one table's COPY data (text format) as it arrives, in pieces of any size.
 *
 * COPY text escapes a newline inside a value as `\n` (and a carriage return as `\r`, a backslash
 * as `\\`), so every raw newline ends exactly one row; a row is never empty of bytes except for a
 * single-column table holding an empty string, which is a row too. pg_dump (12 to 17) ends the
 * data with the line `\.` and two empty lines; a value `\.` would be written `\\.`, so that line
 * can only be the end marker. Without the marker every line is a row.
 */
import { DumpFormatError } from "./archive";

const NL = 0x0a;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

export class CopyRowCounter {
    private rows = 0;
    /** Bytes of the current (unfinished) line seen so far. */
    private lineLen = 0;
    /** Its first two bytes, enough to recognize `\.`. */
    private b0 = -1;
    private b1 = -1;
    private ended = false;

    constructor(private readonly what: string) {}

    /** Counts the rows in `buf`; after the end marker only the empty lines pg_dump writes may follow. */
    push(buf: Buffer): void {
        const from = this.ended ? 0 : this.scan(buf, 0);
        if (from >= 0) {
            this.afterEnd(buf, from);
        }
    }

    /**
     * Counts rows in `buf` from `pos`. Returns the offset just after the end-marker line when it
     * is in `buf` (the rest is not COPY data), else -1 (all of it was).
     */
    scan(buf: Buffer, pos: number): number {
        for (;;) {
            const nl = buf.indexOf(NL, pos);
            const stop = nl < 0 ? buf.length : nl;
            if (this.lineLen < 2) {
                for (let i = pos; i < stop && this.lineLen + (i - pos) < 2; i++) {
                    if (this.lineLen + (i - pos) === 0) {
                        this.b0 = buf[i];
                    } else {
                        this.b1 = buf[i];
                    }
                }
            }
            this.lineLen += stop - pos;
            if (nl < 0) {
                return -1;
            }
            if (this.lineLen === 2 && this.b0 === BACKSLASH && this.b1 === DOT) {
                this.ended = true;
                this.lineLen = 0;
                return nl + 1;
            }
            this.rows++;
            this.lineLen = 0;
            pos = nl + 1;
        }
    }

    /** After `\.` only the empty lines pg_dump writes may follow. */
    private afterEnd(buf: Buffer, from: number): void {
        for (let i = from; i < buf.length; i++) {
            if (buf[i] !== NL) {
                throw new DumpFormatError(`${this.what}: data continues after the end-of-data marker`);
            }
        }
    }

    /** The row count; throws when the data stops inside a row. */
    finish(): number {
        if (this.lineLen > 0) {
            throw new DumpFormatError(`${this.what}: the data ends inside a row (no final newline): the dump was cut short`);
        }
        return this.rows;
    }

    /** Whether the end-of-data marker was seen (the plain format needs it to leave COPY). */
    get done(): boolean {
        return this.ended;
    }
}
