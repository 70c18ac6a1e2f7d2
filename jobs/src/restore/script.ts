/**
 * Runs SQL written by pg_dump (a plain-format backup, or pg_restore's text output for selected
 * tables) through node-postgres, statement by statement, with COPY data sent as COPY data. psql
 * is never involved, so a backup cannot run a command in the job: a line psql would take as a
 * meta-command (`\!`, `\o`, `\copy`, `\connect`, ...) is refused with its line number, before
 * anything after it runs. Backslashes inside COPY data, strings, dollar-quoted bodies, quoted
 * identifiers and comments are data, as PostgreSQL's lexer says. `\restrict`/`\unrestrict` lines
 * (which pg_dump writes so that psql refuses meta-commands) are skipped.
 */
import { Client } from "pg";
import { Readable } from "stream";
import { NameDecoder, serverEncodingDecoder, utf8 } from "../dumpstream/encoding";
import { JobError } from "../log";
import { throwIfStopping } from "../shutdown";
import { CopyIn } from "./copyIn";
import { identName, isKeyword, SqlLexer, Token } from "./sqlLexer";

export interface ScriptOptions {
    /** Names the input in messages: "plain backup crypto_exchange/…sql". */
    label: string;
    /** The caller holds a transaction: refuse statements that would end or split it. */
    inTransaction?: boolean;
}

export interface ScriptStats {
    statements: number;
    copies: number;
    rows: number;
}

const RESTRICT_LINE = /^\\(un)?restrict [A-Za-z0-9]+\s*$/;
const TRANSACTION_CONTROL = ["begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", "prepare"];
/** Client encodings this runner reads (it sends text as UTF-8). pg_dump writes the database's encoding; UTF8 is the norm. */
const ENCODINGS = ["UTF8", "UNICODE"];

/** Splits a byte stream into lines (latin1, one character per byte), without their "\n". */
async function* lines(input: Readable): AsyncGenerator<{ line: string; newline: boolean }> {
    let rest = "";
    for await (const chunk of input) {
        const text = rest + (Buffer.isBuffer(chunk) ? chunk.toString("latin1") : Buffer.from(chunk).toString("latin1"));
        const parts = text.split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
            yield { line, newline: true };
        }
    }
    if (rest !== "") {
        yield { line: rest, newline: false };
    }
}

/** What a statement is, from its first tokens. Pure. */
export function classify(tokens: readonly Token[]): "copy-in" | "copy-other" | "transaction" | "encoding" | "std-strings" | "plain" {
    const first = identName(tokens[0]);
    if (first === "copy") {
        const fromStdin = tokens.some((t, i) => t.depth === 0 && isKeyword(t, "from") && (isKeyword(tokens[i + 1], "stdin") || isKeyword(tokens[i + 1], "stdout")));
        return fromStdin ? "copy-in" : "copy-other";
    }
    if (tokens[0]?.t === "ident" && TRANSACTION_CONTROL.includes(first!)) {
        return "transaction";
    }
    if (isKeyword(tokens[0], "set") || isKeyword(tokens[0], "reset")) {
        const names = tokens.slice(1, 4).map(identName);
        if (names.includes("client_encoding") || isKeyword(tokens[1], "names")) {
            return "encoding";
        }
        if (names.includes("standard_conforming_strings")) {
            return "std-strings";
        }
    }
    return "plain";
}

/** The value a `SET x = v` / `SET x TO v` statement gives, lowercased. */
function setValue(tokens: readonly Token[]): string {
    const v = tokens.find((t, i) => i >= 2 && t.t !== "op");
    return v && (v.t === "ident" || v.t === "string" || v.t === "qident") ? v.v.toUpperCase() : "";
}

/** The meta-command at the start of a psql backslash: `\!`, `\copy`, `\connect`. */
function metaName(line: string, at: number): string {
    return `\\${/^[A-Za-z!?]*/.exec(line.slice(at + 1))?.[0] ?? ""}`;
}

/** What a scan does with what it reads: run it, or only look at it. */
export interface ScriptSink {
    statement(sql: string, tokens: readonly Token[]): Promise<void>;
    copyBegin(sql: string): Promise<void>;
    copyData(data: Buffer): Promise<void>;
    /** Returns the rows copied. */
    copyEnd(): Promise<number>;
    abort(): Promise<void>;
}

/**
 * Reads a script statement by statement, COPY data as data, refusing psql meta-commands, and
 * hands each piece to the sink in order.
 */
export async function scanScript(input: Readable, sink: ScriptSink, o: ScriptOptions): Promise<ScriptStats> {
    const stats: ScriptStats = { statements: 0, copies: 0, rows: 0 };
    const ready: { text: string; tokens: Token[] }[] = [];
    let tokens: Token[] = [];
    let pending = "";
    let chunk = "";
    let start = 0;
    let lineNo = 0;
    let meta: string | undefined;
    const lexer = new SqlLexer((t) => {
        if (t.t === "backslash") {
            meta ??= metaName(chunk, t.at);
            return;
        }
        if (t.t !== "semi") {
            tokens.push(t);
            return;
        }
        const text = pending + chunk.slice(start, t.at + 1);
        pending = "";
        start = t.at + 1;
        if (tokens.length > 0) {
            // The server applies the setting before anything after it is read: so does the lexer.
            if (classify(tokens) === "std-strings") {
                lexer.stdStrings = setValue(tokens) !== "OFF";
            }
            ready.push({ text, tokens });
        }
        tokens = [];
    });
    const where = () => `${o.label}, line ${lineNo}`;
    const failed = (e: unknown) => new JobError(`${where()}: ${(e as Error).message}`);
    let inCopy = false;
    /** How the dump's bytes read: UTF-8 until a SET client_encoding names the database's own. */
    let decode: NameDecoder = utf8;
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async () => {
        if (batched > 0) {
            const data = Buffer.concat(batch);
            batch = [];
            batched = 0;
            await sink.copyData(data).catch((e) => {
                throw failed(e);
            });
        }
    };
    const endCopy = async () => {
        await flush();
        stats.rows += await sink.copyEnd().catch((e) => {
            throw failed(e);
        });
        inCopy = false;
    };

    const handle = async (s: { text: string; tokens: Token[] }, last: boolean): Promise<void> => {
        const kind = classify(s.tokens);
        if (kind === "copy-other") {
            throw new JobError(`${where()}: COPY other than FROM stdin refused (a backup restores only the data it carries)`);
        }
        if (kind === "transaction" && o.inTransaction) {
            throw new JobError(`${where()}: ${identName(s.tokens[0])!.toUpperCase()} refused: this restore runs in one transaction`);
        }
        if (kind === "encoding") {
            const value = setValue(s.tokens);
            if (!ENCODINGS.includes(value.replace(/-/g, ""))) {
                // The session stays UTF-8: what follows is decoded from the dump's encoding (LATIN1,
                // WIN1252, …: pg_dump writes the database's own) and sent as UTF-8; the server converts.
                const other = serverEncodingDecoder(value);
                if (!other) {
                    throw new JobError(`${where()}: client encoding ${value || "change"} is not supported for plain backups: use the custom format (BACKUP_FORMAT=custom)`);
                }
                decode = other;
                stats.statements++;
                return;
            }
            decode = utf8;
        }
        const sql = decode(Buffer.from(s.text, "latin1"));
        stats.statements++;
        if (kind === "copy-in") {
            if (!last) {
                throw new JobError(`${where()}: text after COPY ... FROM stdin on the same line refused (the data starts on the next line)`);
            }
            await sink.copyBegin(sql).catch((e) => {
                throw failed(e);
            });
            inCopy = true;
            stats.copies++;
            return;
        }
        await sink.statement(sql, s.tokens).catch((e) => {
            throw failed(e);
        });
    };

    try {
        for await (const { line, newline } of lines(input)) {
            lineNo++;
            if (inCopy) {
                if (line === "\\." || line === "\\.\r") {
                    await endCopy();
                    continue;
                }
                const raw = Buffer.from(newline ? `${line}\n` : line, "latin1");
                const data = decode === utf8 ? raw : Buffer.from(decode(raw), "utf8");
                batch.push(data);
                batched += data.length;
                if (batched >= 256 * 1024) {
                    await flush();
                }
                continue;
            }
            if (lexer.atTopLevel && tokens.length === 0 && RESTRICT_LINE.test(line)) {
                continue;
            }
            chunk = newline ? `${line}\n` : line;
            start = 0;
            lexer.lex(chunk);
            if (meta) {
                throw new JobError(
                    `${where()}: psql meta-command ${meta} refused: a backup must not run commands` +
                        (meta === "\\connect" || meta === "\\c" ? " (a plain dump made with --create switches databases; dump without it)" : ""),
                );
            }
            pending += chunk.slice(start);
            for (let i = 0; i < ready.length; i++) {
                await handle(ready[i], i === ready.length - 1 && tokens.length === 0);
            }
            ready.length = 0;
        }
        lexer.finish();
        if (inCopy) {
            await endCopy();
        }
        if (lexer.state !== "sql") {
            throw new JobError(`${o.label}: ends inside ${lexer.state === "comment" ? "a comment" : lexer.state === "dquote" ? "a quoted identifier" : "a string"}: truncated or not SQL`);
        }
        if (tokens.length > 0) {
            await handle({ text: pending, tokens }, true);
        }
        return stats;
    } catch (e) {
        await sink.abort().catch(() => undefined);
        throw e instanceof JobError ? e : failed(e);
    }
}

/**
 * Runs a script on a connection (its own transaction or none; see ScriptOptions.inTransaction).
 * A stop (SIGTERM) ends it at the next statement or block of COPY data: no child process to
 * kill carries a plain restore, so it listens itself.
 */
export async function runScript(client: Client, input: Readable, o: ScriptOptions): Promise<ScriptStats> {
    let copy: CopyIn | undefined;
    return scanScript(input, {
        statement: async (sql) => {
            throwIfStopping();
            await client.query(sql);
        },
        copyBegin: async (sql) => {
            throwIfStopping();
            copy = await CopyIn.begin(client, sql);
        },
        copyData: (data) => {
            throwIfStopping();
            return copy!.write(data);
        },
        copyEnd: async () => {
            const rows = await copy!.end();
            copy = undefined;
            return rows;
        },
        abort: async () => {
            await copy?.abort("kx-backup: restore aborted");
        },
    }, o);
}

/** Reads a script without running it: the statements' roles (see roles.ts), COPY data skipped. */
export async function scriptStatements(input: Readable, o: ScriptOptions, each: (tokens: readonly Token[]) => void): Promise<void> {
    const none = async () => undefined;
    await scanScript(input, { statement: async (_sql, tokens) => each(tokens), copyBegin: none, copyData: none, copyEnd: async () => 0, abort: none }, o);
}
