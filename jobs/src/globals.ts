/**
 * The cluster's globals with every backup: `pg_dumpall --globals-only --no-role-passwords` (roles,
 * their attributes, settings, comments and memberships; tablespaces listed), stored beside the
 * dump as `<key>.globals.sql` and covered by the manifest (size, sha256, role names). A restore
 * onto a new server creates the roles a dump needs from it (restore --create-roles), and verify
 * creates them on its scratch server, so a backup verifies if and only if it restores.
 *
 * The file is never run as SQL: it is parsed, and only statements built here from what was
 * parsed are executed (see restore/roles.ts).
 */
import { createHash } from "crypto";
import { connect } from "./db";
import { JobError, Logger } from "./log";
import { Manifest } from "./manifest";
import { globalsKey } from "./naming";
import { ClientTools } from "./pgtools";
import { identName, isKeyword, splitStatements, Token } from "./restore/sqlLexer";
import { toolText } from "./restore/tools";
import { Settings } from "./settings";
import { readText, Target } from "./targets";

export interface GlobalRole {
    name: string;
    /** CREATE ROLE attributes, rebuilt from known keywords: LOGIN, NOSUPERUSER, CONNECTION LIMIT 5, ... Never a password. */
    attributes: string[];
    /** `ALTER ROLE "name" SET ...` statements, one statement each. */
    settings: string[];
    comment?: string;
}

export interface Membership {
    /** The group role. */
    role: string;
    member: string;
    admin: boolean;
}

export interface Globals {
    roles: GlobalRole[];
    memberships: Membership[];
    tablespaces: string[];
    /** Statements of kinds not used (reported, never run). */
    ignored: string[];
    /** Role names in the order to create them (the manifest's, by OID on the source), when known. */
    order?: string[];
}

const FLAGS = new Set([
    "superuser", "nosuperuser", "inherit", "noinherit", "createrole", "nocreaterole", "createdb", "nocreatedb",
    "login", "nologin", "replication", "noreplication", "bypassrls", "nobypassrls",
]);

function quote(name: string): string {
    return `"${name.replace(/"/g, '""')}"`;
}

/** Role attributes from the tokens after `ALTER ROLE name WITH`: known keywords only. */
function attributes(tokens: readonly Token[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < tokens.length; i++) {
        const w = tokens[i].t === "ident" ? (tokens[i] as { v: string }).v : "";
        if (FLAGS.has(w)) {
            out.push(w.toUpperCase());
        } else if (w === "connection" && isKeyword(tokens[i + 1], "limit") && tokens[i + 2]?.t === "num" && /^-?\d+$/.test((tokens[i + 2] as { v: string }).v)) {
            out.push(`CONNECTION LIMIT ${(tokens[i + 2] as { v: string }).v}`);
            i += 2;
        } else if (w === "valid" && isKeyword(tokens[i + 1], "until") && tokens[i + 2]?.t === "string") {
            const until = tokens[i + 2] as { v: string; kind: string };
            out.push(`VALID UNTIL ${until.kind === "escape" ? "E" : ""}'${until.v}'`);
            i += 2;
        } else if (w === "password") {
            i++; // never carried over (pg_dumpall --no-role-passwords writes none)
        }
    }
    return out;
}

/** Parses pg_dumpall --globals-only output. Pure; throws on a psql meta-command other than \restrict. */
export function parseGlobals(sql: string): Globals {
    const g: Globals = { roles: [], memberships: [], tablespaces: [], ignored: [] };
    const role = (name: string): GlobalRole => {
        let r = g.roles.find((x) => x.name === name);
        if (!r) {
            r = { name, attributes: [], settings: [] };
            g.roles.push(r);
        }
        return r;
    };
    for (const s of splitStatements(sql)) {
        const t = s.tokens;
        const w = (i: number) => (t[i]?.t === "ident" ? (t[i] as { v: string }).v : undefined);
        if (w(0) === "set" || (w(0) === "select" && s.text.includes("set_config"))) {
            continue;
        }
        if (w(0) === "create" && w(1) === "role" && identName(t[2])) {
            role(identName(t[2])!);
        } else if (w(0) === "alter" && w(1) === "role" && identName(t[2]) && w(3) === "with") {
            role(identName(t[2])!).attributes = attributes(t.slice(4));
        } else if (w(0) === "alter" && w(1) === "role" && identName(t[2]) && (w(3) === "set" || w(3) === "reset" || (w(3) === "in" && w(4) === "database"))) {
            const name = identName(t[2])!;
            const nameToken = t[2] as { end: number };
            role(name).settings.push(`ALTER ROLE ${quote(name)}${s.text.slice(nameToken.end)}`);
        } else if (w(0) === "comment" && w(1) === "on" && w(2) === "role" && identName(t[3]) && t[5]?.t === "string" && t[5].kind === "std") {
            role(identName(t[3])!).comment = t[5].v.replace(/''/g, "'");
        } else if (w(0) === "grant" && !t.some((x) => isKeyword(x, "on"))) {
            const to = t.findIndex((x) => isKeyword(x, "to"));
            const names = (from: number, until: number) => t.slice(from, until).map(identName).filter((x): x is string => x !== undefined);
            const end = t.findIndex((x, i) => i > to && (isKeyword(x, "with") || isKeyword(x, "granted")));
            const admin = t.some((x, i) => isKeyword(x, "admin") && (isKeyword(t[i + 1], "option") || isKeyword(t[i + 1], "true")));
            for (const group of names(1, to)) {
                for (const member of names(to + 1, end < 0 ? t.length : end)) {
                    g.memberships.push({ role: group, member, admin });
                }
            }
        } else if (w(0) === "create" && w(1) === "tablespace" && identName(t[2])) {
            g.tablespaces.push(identName(t[2])!);
        } else if (!t.some((x) => isKeyword(x, "tablespace"))) {
            g.ignored.push(s.text.trim().split(/\s+/).slice(0, 3).join(" "));
        }
    }
    return g;
}

/** Dumps the globals with the same client tools as the dump, connected to the database backed up. */
export async function dumpGlobals(s: Settings, tools: ClientTools): Promise<string> {
    return toolText(tools, "pg_dumpall", ["--globals-only", "--no-role-passwords", "--no-password", "--database", s.pgDatabase!], s, `pg_dumpall --globals-only of ${s.pgHost}`);
}

/**
 * Dumps the globals and stores them beside the backup on every target, before the manifest is
 * written; returns the manifest's `globals` field. On failure removes what it wrote.
 */
export async function backupGlobals(s: Settings, tools: ClientTools, targets: Target[], key: string): Promise<NonNullable<Manifest["globals"]>> {
    const sql = await dumpGlobals(s, tools);
    const roles = await creationOrder(s, parseGlobals(sql).roles.map((r) => r.name));
    const written = await Promise.allSettled(targets.map((t) => t.putSmall(globalsKey(key), sql)));
    const failed = written.flatMap((r, i) => (r.status === "rejected" ? [`${targets[i].kind}: ${(r.reason as Error).message}`] : []));
    if (failed.length > 0) {
        await removeGlobals(targets, key);
        throw new JobError(`could not store the globals of ${key}: ${failed.join("; ")}`);
    }
    return { key: globalsKey(key), size: Buffer.byteLength(sql), sha256: createHash("sha256").update(sql).digest("hex"), roles };
}

/**
 * The roles in the order the server made them (by OID). Roles created again in this order list
 * the same way in catalog scans, so pg_dump prints a policy's roles in the same order as before.
 */
async function creationOrder(s: Settings, names: string[]): Promise<string[]> {
    const c = await connect(s);
    try {
        const r = await c.query<{ n: string }>("SELECT rolname AS n FROM pg_roles WHERE rolname = ANY($1) ORDER BY oid", [names]);
        return [...r.rows.map((x) => x.n), ...names.filter((n) => !r.rows.some((x) => x.n === n))];
    } finally {
        await c.end().catch(() => undefined);
    }
}

/** Removes a backup's globals from every target (a failed run cleaning up after itself). */
export async function removeGlobals(targets: Target[], key: string): Promise<void> {
    await Promise.all(targets.map((t) => t.delete(globalsKey(key)).catch(() => undefined)));
}

/** Reads a backup's globals from a target, checked against its manifest; undefined for backups without. */
export async function fetchGlobals(target: Target, manifest: Manifest, log: Logger): Promise<Globals | undefined> {
    if (!manifest.globals) {
        return undefined;
    }
    const text = await readText(target, manifest.globals.key).catch((e) => {
        throw new JobError(`cannot read the globals ${manifest.globals!.key} on ${target.kind}: ${(e as Error).message}`);
    });
    const sha = createHash("sha256").update(text).digest("hex");
    if (sha !== manifest.globals.sha256 || Buffer.byteLength(text) !== manifest.globals.size) {
        throw new JobError(`globals ${manifest.globals.key} on ${target.kind} do not match the manifest (sha256 ${sha}): corrupted or replaced`);
    }
    let globals: Globals;
    try {
        globals = parseGlobals(text);
    } catch (e) {
        throw new JobError(`globals ${manifest.globals.key} on ${target.kind}: ${(e as Error).message}`);
    }
    globals.order = manifest.globals.roles;
    if (globals.ignored.length > 0) {
        log.warn(`globals ${manifest.globals.key}: ignored ${globals.ignored.length} statement(s) of unexpected kinds (${globals.ignored.slice(0, 3).join("; ")})`, { event: "globals.ignored" });
    }
    return globals;
}
