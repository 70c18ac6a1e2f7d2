/**
 * A lexer for the SQL that pg_dump writes, with PostgreSQL's own rules (src/backend/parser/scan.l,
 * as psql's psqlscan.l mirrors them): where strings, quoted identifiers, dollar-quoted bodies and
 * comments begin and end, and so where a statement ends and whether a backslash is outside all of
 * them (psql would run it as a meta-command). Text is given as latin1-decoded strings, so one
 * character is one byte, as in the C lexers. Streaming: state carries across calls.
 */

export type Token =
    /** An unquoted identifier or keyword, lowercased as PostgreSQL folds it; [at, end) in the text (one lex() call). */
    | { t: "ident"; v: string; depth: number; at: number; end: number }
    /** A double-quoted identifier, unescaped; [at, end) in the text (one lex() call). */
    | { t: "qident"; v: string; depth: number; at: number; end: number }
    /** A string constant's body as written (escapes of E'' strings not decoded); `dollar` for $$ bodies. */
    | { t: "string"; v: string; depth: number; kind: "std" | "escape" | "bits" | "dollar" }
    | { t: "num"; v: string; depth: number }
    /** Any other character: punctuation and operator characters, one at a time. */
    | { t: "op"; v: string; depth: number }
    /** A backslash outside strings, quoted identifiers and comments: psql runs it as a meta-command. */
    | { t: "backslash"; at: number; depth: number }
    /** A statement-ending semicolon; `at` is its offset in the chunk being lexed. */
    | { t: "semi"; at: number; depth: number };

type Mode = "sql" | "comment" | "squote" | "estring" | "bits" | "dquote" | "dollar" | "quotestop";

const IDENT_START = /[A-Za-z\x80-\xff_]/;
const IDENT_CONT = /[A-Za-z\x80-\xff_0-9$]/;
const DOLLAR_DELIM = /^\$(?:[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9]*)?\$/;
const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[Ee][-+]?\d+)?/;

export class SqlLexer {
    /** Whether '...' strings treat backslashes literally (standard_conforming_strings). */
    stdStrings = true;
    private mode: Mode = "sql";
    private commentDepth = 0;
    private dollarTag = "";
    private stringMode: "squote" | "estring" | "bits" = "squote";
    /** Quote-stop lookahead: a newline has been seen since the closing quote. */
    private sawNewline = false;
    private text = "";
    /** Where the open quoted identifier began. */
    private tokenStart = 0;
    private parenDepth = 0;
    private beginDepth = 0;
    /** psql's heuristic for BEGIN ... END bodies of CREATE [OR REPLACE] FUNCTION/PROCEDURE. */
    private identCount = 0;
    private lead = "";

    constructor(private readonly emit: (tok: Token) => void) {}

    /** True between statements: nothing open (no string, comment or parenthesis). */
    get atTopLevel(): boolean {
        return this.mode === "sql" && this.parenDepth === 0 && this.beginDepth === 0;
    }

    /** The lexer mode, for messages ("unterminated string"). */
    get state(): string {
        return this.mode === "quotestop" ? "sql" : this.mode;
    }

    lex(s: string): void {
        let i = 0;
        const n = s.length;
        while (i < n) {
            const c = s[i];
            switch (this.mode) {
                case "comment": {
                    if (c === "/" && s[i + 1] === "*") {
                        this.commentDepth++;
                        i += 2;
                    } else if (c === "*" && s[i + 1] === "/") {
                        if (this.commentDepth-- === 0) {
                            this.mode = "sql";
                        }
                        i += 2;
                    } else {
                        i++;
                    }
                    continue;
                }
                case "dquote": {
                    if (c === '"') {
                        if (s[i + 1] === '"') {
                            this.text += '"';
                            i += 2;
                            continue;
                        }
                        this.mode = "sql";
                        this.emit({ t: "qident", v: this.text, depth: this.parenDepth, at: this.tokenStart, end: i + 1 });
                        i++;
                        continue;
                    }
                    this.text += c;
                    i++;
                    continue;
                }
                case "dollar": {
                    if (c === "$" && s.startsWith(this.dollarTag, i)) {
                        this.mode = "sql";
                        this.emit({ t: "string", v: this.text, depth: this.parenDepth, kind: "dollar" });
                        i += this.dollarTag.length;
                        continue;
                    }
                    this.text += c;
                    i++;
                    continue;
                }
                case "squote":
                case "bits":
                case "estring": {
                    if (this.mode === "estring" && c === "\\") {
                        // Any escaped character, a quote included, stays inside the string.
                        this.text += s.slice(i, i + 2);
                        i += 2;
                        continue;
                    }
                    if (c === "'") {
                        if (s[i + 1] === "'" && this.mode !== "bits") {
                            this.text += "''";
                            i += 2;
                            continue;
                        }
                        // A string continues after whitespace holding a newline and another quote.
                        this.stringMode = this.mode;
                        this.mode = "quotestop";
                        this.sawNewline = false;
                        i++;
                        continue;
                    }
                    this.text += c;
                    i++;
                    continue;
                }
                case "quotestop": {
                    if (c === "\n" || c === "\r") {
                        this.sawNewline = true;
                        i++;
                        continue;
                    }
                    if (c === " " || c === "\t" || c === "\f") {
                        i++;
                        continue;
                    }
                    if (c === "-" && s[i + 1] === "-") {
                        const eol = s.slice(i).search(/[\n\r]/);
                        i = eol < 0 ? n : i + eol;
                        continue;
                    }
                    if (c === "'" && this.sawNewline) {
                        this.mode = this.stringMode;
                        i++;
                        continue;
                    }
                    this.endString();
                    continue; // re-lex this character as SQL
                }
                case "sql":
                    i = this.sql(s, i);
                    continue;
            }
        }
    }

    /** Call at the end of the input: a string closed just before the end is complete. */
    finish(): void {
        if (this.mode === "quotestop") {
            this.endString();
        }
    }

    private endString(): void {
        this.mode = "sql";
        this.emit({ t: "string", v: this.text, depth: this.parenDepth, kind: this.stringMode === "estring" ? "escape" : this.stringMode === "bits" ? "bits" : "std" });
    }

    private startString(mode: "squote" | "estring" | "bits"): void {
        this.mode = mode;
        this.text = "";
    }

    /** One token in SQL mode starting at i; returns the index after it. */
    private sql(s: string, i: number): number {
        const c = s[i];
        const next = s[i + 1];
        if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f") {
            return i + 1;
        }
        if (c === "-" && next === "-") {
            const eol = s.slice(i).search(/[\n\r]/);
            return eol < 0 ? s.length : i + eol;
        }
        if (c === "/" && next === "*") {
            this.mode = "comment";
            this.commentDepth = 0;
            return i + 2;
        }
        if (c === "'") {
            this.startString(this.stdStrings ? "squote" : "estring");
            return i + 1;
        }
        if (c === '"') {
            this.mode = "dquote";
            this.text = "";
            this.tokenStart = i;
            return i + 1;
        }
        if (next === "'" && /[eEbBxXnN]/.test(c)) {
            this.startString(/[eE]/.test(c) ? "estring" : /[nN]/.test(c) ? (this.stdStrings ? "squote" : "estring") : "bits");
            return i + 2;
        }
        if ((c === "u" || c === "U") && next === "&" && (s[i + 2] === "'" || s[i + 2] === '"')) {
            if (s[i + 2] === "'") {
                this.startString("squote");
            } else {
                this.mode = "dquote";
                this.text = "";
                this.tokenStart = i;
            }
            return i + 3;
        }
        if (c === "$") {
            const delim = DOLLAR_DELIM.exec(s.slice(i, i + 256));
            if (delim) {
                this.mode = "dollar";
                this.dollarTag = delim[0];
                this.text = "";
                return i + delim[0].length;
            }
            const param = /^\$\d+/.exec(s.slice(i, i + 32));
            if (param) {
                this.emit({ t: "num", v: param[0], depth: this.parenDepth });
                return i + param[0].length;
            }
            this.emit({ t: "op", v: "$", depth: this.parenDepth });
            return i + 1;
        }
        if (IDENT_START.test(c)) {
            let j = i + 1;
            while (j < s.length && IDENT_CONT.test(s[j])) {
                j++;
            }
            this.identifier(s.slice(i, j).replace(/[A-Z]/g, (x) => x.toLowerCase()), i, j);
            return j;
        }
        if (/[0-9.]/.test(c)) {
            const num = NUMBER.exec(s.slice(i, i + 512));
            if (num) {
                this.emit({ t: "num", v: num[0], depth: this.parenDepth });
                return i + num[0].length;
            }
        }
        if (c === "(") {
            this.emit({ t: "op", v: c, depth: this.parenDepth });
            this.parenDepth++;
            return i + 1;
        }
        if (c === ")") {
            if (this.parenDepth > 0) {
                this.parenDepth--;
            }
            this.emit({ t: "op", v: c, depth: this.parenDepth });
            return i + 1;
        }
        if (c === ";") {
            if (this.parenDepth === 0 && this.beginDepth === 0) {
                this.identCount = 0;
                this.emit({ t: "semi", at: i, depth: 0 });
            } else {
                this.emit({ t: "op", v: c, depth: this.parenDepth });
            }
            return i + 1;
        }
        if (c === "\\") {
            this.emit({ t: "backslash", at: i, depth: this.parenDepth });
            return i + 1;
        }
        this.emit({ t: "op", v: c, depth: this.parenDepth });
        return i + 1;
    }

    /** psql's rule: inside CREATE [OR REPLACE] FUNCTION/PROCEDURE, BEGIN ... END bodies hold semicolons. */
    private identifier(v: string, at: number, end: number): void {
        if (this.identCount === 0) {
            this.lead = "";
        }
        if (this.identCount < 4) {
            this.lead += ["create", "function", "procedure", "or", "replace"].includes(v) ? v[0] : " ";
        }
        this.identCount++;
        if (/^c(f|p|or[fp])/.test(this.lead) && this.parenDepth === 0) {
            if (v === "begin") {
                this.beginDepth++;
            } else if (v === "case" && this.beginDepth >= 1) {
                this.beginDepth++;
            } else if (v === "end" && this.beginDepth > 0) {
                this.beginDepth--;
            }
        }
        this.emit({ t: "ident", v, depth: this.parenDepth, at, end });
    }
}

/** Every token of a complete piece of SQL (statements, without COPY data). Pure. */
export function tokenize(sql: string): Token[] {
    const tokens: Token[] = [];
    const lexer = new SqlLexer((t) => tokens.push(t));
    lexer.lex(sql);
    lexer.finish();
    return tokens;
}

function shift(t: Token, by: number): Token {
    return t.t === "ident" || t.t === "qident" ? { ...t, at: t.at - by, end: t.end - by } : t;
}

export interface Statement {
    /** The statement's text, without its semicolon. */
    text: string;
    /** Its tokens; offsets relative to `text`. */
    tokens: Token[];
}

const META_LINE = /^\\(restrict|unrestrict|connect|c)(\s[^\n]*)?$/;

/**
 * The statements of a complete piece of SQL written by pg_dump/pg_dumpall, with their text.
 * `\restrict`, `\unrestrict` and `\connect` lines are dropped (the caller decides where it is
 * connected); any other psql meta-command is refused. Pure; throws naming the line.
 */
export function splitStatements(sql: string): Statement[] {
    let text = sql;
    for (const t of tokenize(sql)) {
        if (t.t !== "backslash") {
            continue;
        }
        const lineStart = sql.lastIndexOf("\n", t.at - 1) + 1;
        const lineEnd = sql.indexOf("\n", t.at) < 0 ? sql.length : sql.indexOf("\n", t.at);
        const line = sql.slice(lineStart, lineEnd);
        if (lineStart !== t.at || !META_LINE.test(line.replace(/\r$/, ""))) {
            throw new Error(`line ${sql.slice(0, t.at).split("\n").length}: psql meta-command ${/^\\[A-Za-z!?]*/.exec(sql.slice(t.at))![0]} refused`);
        }
        text = text.slice(0, lineStart) + " ".repeat(line.length) + text.slice(lineEnd);
    }
    const out: Statement[] = [];
    let start = 0;
    let tokens: Token[] = [];
    for (const t of tokenize(text)) {
        if (t.t === "semi") {
            if (tokens.length > 0) {
                out.push({ text: text.slice(start, t.at), tokens: tokens.map((x) => shift(x, start)) });
            }
            tokens = [];
            start = t.at + 1;
        } else {
            tokens.push(t);
        }
    }
    if (tokens.length > 0) {
        out.push({ text: text.slice(start), tokens: tokens.map((x) => shift(x, start)) });
    }
    return out;
}

/** An identifier token's name (unquoted ones already folded), else undefined. */
export function identName(t: Token | undefined): string | undefined {
    return t && (t.t === "ident" || t.t === "qident") ? t.v : undefined;
}

/** True when the token is the unquoted keyword `kw`. */
export function isKeyword(t: Token | undefined, kw: string): boolean {
    return t?.t === "ident" && t.v === kw;
}
