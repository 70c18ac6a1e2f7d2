/**
 * The database itself as the dump describes it: its DATABASE, DATABASE PROPERTIES, COMMENT and
 * ACL entries (what `pg_restore --create` would run), rewritten for another name. That is how a
 * restore builds a scratch database with the original's owner, encoding, locale provider and
 * collation, settings, role-in-database settings, comment and privileges, and then swaps it in.
 * Only the statement kinds pg_dump writes there are accepted.
 */
import { quoteIdent } from "../db";
import { JobError } from "../log";
import { roleReferences } from "./roles";
import { identName, isKeyword, splitStatements, Statement } from "./sqlLexer";

export interface DatabaseDefinition {
    /** The database's name in the dump. */
    source: string;
    /** That name as the dump writes it (quoted when needed): for comparing pg_dump output. */
    sourceText: string;
    /** CREATE DATABASE (with the dump's options) and its owner: run before the content is restored. */
    create(name: string): string[];
    /** Settings, role-in-database settings, comment, privileges: run after the content is restored. */
    properties(name: string): string[];
    /** Roles these statements name. */
    roles: string[];
}

type Kind = "create" | "owner" | "property" | "skip";

function kindOf(s: Statement): Kind {
    const t = s.tokens;
    const w = (i: number) => (t[i]?.t === "ident" ? (t[i] as { v: string }).v : undefined);
    if (w(0) === "set" || (w(0) === "select" && identName(t[1]) === "pg_catalog" && identName(t[3]) === "set_config")) {
        return "skip";
    }
    if (w(0) === "create" && w(1) === "database") {
        return "create";
    }
    if (w(0) === "alter" && w(1) === "database" && w(3) === "owner") {
        return "owner";
    }
    const onDatabase = t.some((x, i) => isKeyword(x, "database") && (isKeyword(t[i - 1], "on") || isKeyword(t[i - 1], "in")));
    if ((w(0) === "alter" && w(1) === "database") || (onDatabase && ["comment", "grant", "revoke", "alter", "security"].includes(w(0) ?? ""))) {
        return "property";
    }
    throw new JobError(`the dump's database entries hold an unexpected statement (${s.text.trim().split(/\s+/).slice(0, 4).join(" ")} ...): refusing to run it`);
}

/** The statement with the database's name (the identifier after DATABASE) replaced. */
function rename(s: Statement, from: string, to: string): string {
    const i = s.tokens.findIndex((t, j) => j > 0 && isKeyword(s.tokens[j - 1], "database") && identName(t) === from);
    if (i < 0) {
        throw new JobError(`the dump's database entries hold a statement about another database (${s.text.trim().slice(0, 60)}): refusing it`);
    }
    const t = s.tokens[i] as { at: number; end: number };
    return `${s.text.slice(0, t.at)}${quoteIdent(to)}${s.text.slice(t.end)}`.trim();
}

/**
 * Parses `pg_restore --create` output of the database entries only. Pure; throws on anything
 * pg_dump does not write there (a forged dump cannot smuggle other SQL through this path).
 */
export function parseDatabaseEntries(sql: string): DatabaseDefinition {
    let statements: Statement[];
    try {
        statements = splitStatements(sql);
    } catch (e) {
        throw new JobError(`the dump's database entries: ${(e as Error).message}`);
    }
    const kinds = statements.map((s) => ({ s, kind: kindOf(s) }));
    const create = kinds.find((k) => k.kind === "create");
    if (!create) {
        throw new JobError("the dump has no CREATE DATABASE entry: it cannot be restored as a whole database with its properties");
    }
    const source = identName(create.s.tokens[2])!;
    const template = create.s.tokens.findIndex((t) => isKeyword(t, "template"));
    const templateName = identName(create.s.tokens.slice(template + 1).find((t) => t.t === "ident" || t.t === "qident"));
    if (template < 0 || templateName !== "template0") {
        throw new JobError("the dump's CREATE DATABASE does not copy template0: refusing it");
    }
    const of = (kind: Kind) => kinds.filter((k) => k.kind === kind).map((k) => k.s);
    // Every statement must be about this database: checked now, before anything runs.
    [...of("create"), ...of("owner"), ...of("property")].forEach((s) => rename(s, source, source));
    const nameToken = create.s.tokens[2] as { at: number; end: number };
    return {
        source,
        sourceText: create.s.text.slice(nameToken.at, nameToken.end),
        create: (name) => [...of("create"), ...of("owner")].map((s) => rename(s, source, name)),
        properties: (name) => of("property").map((s) => rename(s, source, name)),
        roles: [...new Set(kinds.filter((k) => k.kind !== "skip").flatMap((k) => roleReferences(k.s.tokens)))].sort(),
    };
}
