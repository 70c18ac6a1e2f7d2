/**
 * Counts a plain-format (SQL) dump as it streams. Table data is `COPY schema.table (...) FROM
 * stdin;` followed by COPY text rows and the line `\.`; large objects are written as
 * `SELECT pg_catalog.lo_open('OID', ...)` statements. SQL can carry any text inside string
 * literals, quoted identifiers, dollar quotes and comments (a function body may well contain a
 * line that reads `COPY t FROM stdin;`), so the SQL between data blocks is tokenized just enough
 * to know where statements start and end; only top-level statements count. pg_dump ends every
 * plain dump with the comment `-- PostgreSQL database dump complete`: without it the stream was
 * cut short.
 */
import { DumpFormatError } from "./archive";
import { DumpCounts, DumpReader, nameLabel, RowTally } from "./counts";
import { parseCopyTarget } from "./copystmt";
import { CopyRowCounter } from "./copyrows";
import { clientEncodingOf, NameDecoder, nameDecoder, redecode } from "./encoding";

export { parseCopyTarget };

/** A longer SQL line (outside COPY data) is not something pg_dump writes for a schema. */
const MAX_LINE = 256 * 1024 * 1024;
const DONE_COMMENT = "-- PostgreSQL database dump complete";
const LO_OPEN = "SELECT pg_catalog.lo_open(";
const SCS = "SET standard_conforming_strings";
const CLIENT_ENCODING = "SET client_encoding";

type Lex = { kind: "none" } | { kind: "quote"; escapes: boolean } | { kind: "ident" } | { kind: "dollar"; tag: string } | { kind: "block"; depth: number };

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

export class PlainDumpReader implements DumpReader {
    private mode: "sql" | "copy" = "sql";
    private lex: Lex = { kind: "none" };
    private atStatementStart = true;
    /** The statement being read when it may be one that matters (COPY or lo_open); else undefined. */
    private statement: string | undefined;
    private statementKind: "copy" | "lo" | "strings" | "encoding" | "other" = "other";
    /** Where on the current line the kept statement text continues from. */
    private statementFrom = 0;
    private line: Buffer[] = [];
    private lineLength = 0;
    private copy: { table: { schema: string; name: string }; label: string; counter: CopyRowCounter } | undefined;
    private readonly tables = new RowTally();
    private largeObjects = 0;
    private standardStrings = true;
    /** Names are in the dump's encoding (its `SET client_encoding`); lines are read byte for byte. */
    private decode: NameDecoder = nameDecoder(undefined);
    private complete = false;
    private restrictKey: string | undefined;
    private unrestricted = false;

    async push(chunk: Buffer): Promise<void> {
        let pos = 0;
        while (pos < chunk.length) {
            if (this.mode === "copy") {
                const end = this.copy!.counter.scan(chunk, pos);
                if (end < 0) {
                    return;
                }
                this.tables.add(this.copy!.table, this.copy!.counter.finish());
                this.copy = undefined;
                this.mode = "sql";
                pos = end;
                continue;
            }
            const nl = chunk.indexOf(0x0a, pos);
            if (nl < 0) {
                this.keep(chunk.subarray(pos));
                return;
            }
            this.keep(chunk.subarray(pos, nl + 1));
            // Byte for byte: every server encoding is ASCII-safe, and names are decoded once known (encoding.ts).
            const line = Buffer.concat(this.line, this.lineLength).toString("latin1");
            this.line = [];
            this.lineLength = 0;
            this.sqlLine(line);
            pos = nl + 1;
        }
    }

    private keep(piece: Buffer): void {
        // A copy: the caller's buffer is reused once its push is done.
        this.line.push(Buffer.from(piece));
        this.lineLength += piece.length;
        if (this.lineLength > MAX_LINE) {
            throw new DumpFormatError(`a line of SQL longer than ${MAX_LINE} bytes: not something pg_dump writes`);
        }
    }

    /** Tokenizes one line of SQL (with its newline), carrying quote and comment state across lines. */
    private sqlLine(line: string): void {
        let i = 0;
        const n = line.length;
        this.statementFrom = 0;
        while (i < n) {
            const lex = this.lex;
            if (lex.kind === "quote") {
                const q = lex.escapes ? /['\\]/g : /'/g;
                q.lastIndex = i;
                const m = q.exec(line);
                if (!m) {
                    i = n;
                } else if (m[0] === "\\") {
                    i = m.index + 2;
                } else if (line[m.index + 1] === "'") {
                    i = m.index + 2;
                } else {
                    this.lex = { kind: "none" };
                    i = m.index + 1;
                }
                continue;
            }
            if (lex.kind === "ident") {
                const q = line.indexOf('"', i);
                if (q < 0) {
                    i = n;
                } else if (line[q + 1] === '"') {
                    i = q + 2;
                } else {
                    this.lex = { kind: "none" };
                    i = q + 1;
                }
                continue;
            }
            if (lex.kind === "dollar") {
                const close = line.indexOf(lex.tag, i);
                if (close < 0) {
                    i = n;
                } else {
                    this.lex = { kind: "none" };
                    i = close + lex.tag.length;
                }
                continue;
            }
            if (lex.kind === "block") {
                const m = /\/\*|\*\//g;
                m.lastIndex = i;
                const found = m.exec(line);
                if (!found) {
                    i = n;
                } else {
                    const depth = lex.depth + (found[0] === "/*" ? 1 : -1);
                    this.lex = depth === 0 ? { kind: "none" } : { kind: "block", depth };
                    i = found.index + 2;
                }
                continue;
            }
            const c = line[i];
            if (this.atStatementStart) {
                if (c === " " || c === "\t" || c === "\n" || c === "\r") {
                    i++;
                    continue;
                }
                if (line.startsWith("--", i)) {
                    if (line.slice(i).trimEnd() === DONE_COMMENT) {
                        this.complete = true;
                    }
                    return;
                }
                if (c === "\\") {
                    // A psql meta-command (\connect, \restrict, \unrestrict): the whole line.
                    this.metaCommand(line.slice(i).trim());
                    return;
                }
                if (!line.startsWith("/*", i)) {
                    this.atStatementStart = false;
                    this.statementKind = line.startsWith("COPY ", i) ? "copy" : line.startsWith(LO_OPEN, i) ? "lo" : line.startsWith(SCS, i) ? "strings" : line.startsWith(CLIENT_ENCODING, i) ? "encoding" : "other";
                    this.statement = this.statementKind === "copy" || this.statementKind === "strings" || this.statementKind === "encoding" ? "" : undefined;
                    this.statementFrom = i;
                }
            }
            const special = /['"$;]|--|\/\*/g;
            special.lastIndex = i;
            const m = special.exec(line);
            if (!m) {
                this.take(line, n);
                return;
            }
            i = m.index;
            const tok = m[0];
            if (tok === ";") {
                this.take(line, i);
                this.endStatement(line, i + 1);
                if (this.mode === "copy") {
                    return;
                }
                i++;
            } else if (tok === "--") {
                this.take(line, i);
                return;
            } else if (tok === "/*") {
                this.lex = { kind: "block", depth: 1 };
                i += 2;
            } else if (tok === '"') {
                this.lex = { kind: "ident" };
                i++;
            } else if (tok === "'") {
                const e = i > 0 && (line[i - 1] === "E" || line[i - 1] === "e") && (i < 2 || !IDENT_CHAR.test(line[i - 2]));
                this.lex = { kind: "quote", escapes: e || !this.standardStrings };
                i++;
            } else {
                const dollar = i > 0 && IDENT_CHAR.test(line[i - 1]) ? null : /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(line.slice(i, i + 256));
                if (dollar) {
                    this.lex = { kind: "dollar", tag: dollar[0] };
                    i += dollar[0].length;
                } else {
                    i++;
                }
            }
        }
        this.take(line, n);
    }

    /**
     * pg_dump (since 17.6, 16.10, 15.14, ...) opens a plain dump with `\restrict KEY` and closes it
     * with `\unrestrict KEY` after the closing comment: when it opened so, it must close so.
     */
    private metaCommand(cmd: string): void {
        const m = /^\\(restrict|unrestrict)\s+(\S+)$/.exec(cmd);
        if (m?.[1] === "restrict") {
            this.restrictKey = m[2];
        } else if (m?.[1] === "unrestrict" && m[2] === this.restrictKey) {
            this.unrestricted = true;
        }
    }

    /** Keeps the text of a statement whose text matters (COPY, the string mode) up to `to` on this line. */
    private take(line: string, to: number): void {
        if (this.statement !== undefined && !this.atStatementStart) {
            this.statement += line.slice(this.statementFrom, to);
            if (this.statement.length > 1024 * 1024) {
                throw new DumpFormatError("a COPY statement longer than 1 MiB: not something pg_dump writes");
            }
        }
        this.statementFrom = to;
    }

    private endStatement(line: string, after: number): void {
        const kind = this.statementKind;
        const text = this.statement;
        this.atStatementStart = true;
        this.statement = undefined;
        this.statementKind = "other";
        this.statementFrom = after;
        if (kind === "lo") {
            this.largeObjects++;
        } else if (kind === "copy") {
            const target = parseCopyTarget(text!);
            const table = target && { schema: redecode(target.schema, this.decode), name: redecode(target.name, this.decode) };
            if (!table) {
                if (/\sFROM\s+stdin\s*$/i.test(text!)) {
                    // Data follows: read as SQL, its rows would be miscounted (and its text could reach a message).
                    throw new DumpFormatError("a COPY ... FROM stdin statement whose table name kx-backup cannot read: refusing to guess where its data ends");
                }
                return;
            }
            if (line.slice(after).trim() !== "") {
                throw new DumpFormatError(`unexpected text after the COPY statement of ${nameLabel(table)}: the COPY data must start on the next line`);
            }
            const label = `the COPY data of ${nameLabel(table)}`;
            this.copy = { table, label, counter: new CopyRowCounter(label) };
            this.mode = "copy";
        } else if (kind === "encoding") {
            this.decode = nameDecoder(clientEncodingOf(text!));
        } else if (kind === "strings") {
            // pg_dump writes `SET standard_conforming_strings = on|off;`: off means backslashes escape in '...'.
            this.standardStrings = !/=\s*'?off'?\s*$/i.test(text!);
        }
    }

    async end(): Promise<DumpCounts> {
        if (this.mode === "copy") {
            throw new DumpFormatError(`the dump stops inside the data of ${this.copy!.label}: its output was cut short`);
        }
        if (this.lex.kind !== "none" || !this.complete || this.lineLength > 0 || (this.restrictKey !== undefined && !this.unrestricted)) {
            throw new DumpFormatError(`the plain dump ends before pg_dump's closing line ("${DONE_COMMENT}"): its output was cut short`);
        }
        return { format: "plain", tables: this.tables.tables(), largeObjects: this.largeObjects };
    }
}
