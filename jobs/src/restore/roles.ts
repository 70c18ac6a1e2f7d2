/**
 * Roles a restore needs, and creating the missing ones from the backup's globals. A dump names
 * roles as owners, grantees, policy targets, default-privilege owners and user-mapping users; a
 * restore (and so a verify, which runs the same restore) fails on a server that lacks any of
 * them. Without --create-roles a restore refuses before touching anything and names them; with it
 * they are created, without passwords, from the globals stored beside the dump.
 */
import { Client } from "pg";
import { quoteIdent } from "../db";
import { Globals } from "../globals";
import { JobError, Logger } from "../log";
import { identName, isKeyword, Statement, Token } from "./sqlLexer";

/** Role-like words that are not roles. */
const NOT_ROLES = new Set(["public", "current_user", "session_user", "current_role", "user", "default", "none"]);

/** The role names in a comma-separated list starting at `i`, up to a word not in the list. */
function roleList(tokens: readonly Token[], i: number): string[] {
    const out: string[] = [];
    let j = i;
    while (j < tokens.length) {
        const t = tokens[j];
        const name = identName(t);
        if (name === undefined && t.t !== "string") {
            break;
        }
        if (t.t === "qident" || (t.t === "ident" && !NOT_ROLES.has(name!))) {
            out.push(name!);
        } else if (t.t === "string") {
            out.push(t.v.replace(/''/g, "'"));
        }
        if (tokens[j + 1]?.t === "op" && (tokens[j + 1] as { v: string }).v === ",") {
            j += 2;
            continue;
        }
        break;
    }
    return out;
}

/** Index of the first keyword `kw` at parenthesis depth 0 from `from`, or -1. */
function keywordAt(tokens: readonly Token[], kw: string, from = 0): number {
    for (let i = from; i < tokens.length; i++) {
        if (tokens[i].depth === 0 && isKeyword(tokens[i], kw)) {
            return i;
        }
    }
    return -1;
}

/**
 * The roles one statement of pg_dump's output names. Covers what pg_dump writes: `OWNER TO`,
 * GRANT/REVOKE (object privileges and memberships, GRANTED BY), CREATE POLICY ... TO, ALTER
 * DEFAULT PRIVILEGES FOR ROLE, CREATE USER MAPPING FOR, ALTER ROLE ... IN DATABASE, SET SESSION
 * AUTHORIZATION / SET ROLE, AUTHORIZATION. Pure.
 */
export function roleReferences(tokens: readonly Token[]): string[] {
    const out: string[] = [];
    const word = (i: number) => (tokens[i]?.t === "ident" ? (tokens[i] as { v: string }).v : undefined);
    for (let i = 0; i < tokens.length; i++) {
        if (tokens[i].depth !== 0 || tokens[i].t !== "ident") {
            continue;
        }
        const w = word(i);
        if (w === "owner" && word(i + 1) === "to") {
            out.push(...roleList(tokens, i + 2));
        } else if (w === "granted" && word(i + 1) === "by") {
            out.push(...roleList(tokens, i + 2));
        } else if (w === "authorization") {
            out.push(...roleList(tokens, i + 1));
        } else if ((w === "role" || w === "user") && word(i - 1) === "for") {
            out.push(...roleList(tokens, i + 1));
        } else if (w === "mapping" && word(i + 1) === "for") {
            out.push(...roleList(tokens, i + 2));
        }
    }
    // The grantee lists of GRANT/REVOKE (also inside ALTER DEFAULT PRIVILEGES) and CREATE POLICY.
    const verb = tokens.findIndex((t) => t.depth === 0 && (isKeyword(t, "grant") || isKeyword(t, "revoke")));
    if (verb >= 0) {
        const grant = isKeyword(tokens[verb], "grant");
        const on = keywordAt(tokens, "on", verb);
        const to = keywordAt(tokens, grant ? "to" : "from", verb);
        if (to >= 0) {
            out.push(...roleList(tokens, to + 1));
            if (on < 0 || on > to) {
                // A membership: GRANT role, ... TO role, ...
                let first = verb + 1;
                if (!grant && isKeyword(tokens[first], "admin")) {
                    first += 3; // REVOKE ADMIN OPTION FOR
                }
                out.push(...roleList(tokens, first));
            }
        }
    }
    if (isKeyword(tokens[0], "create") && isKeyword(tokens[1], "policy")) {
        const to = keywordAt(tokens, "to", 2);
        if (to >= 0) {
            out.push(...roleList(tokens, to + 1));
        }
    }
    if (isKeyword(tokens[0], "alter") && isKeyword(tokens[1], "role") && keywordAt(tokens, "in") === 3) {
        out.push(...roleList(tokens, 2));
    }
    if (isKeyword(tokens[0], "set") && (isKeyword(tokens[1], "role") || (isKeyword(tokens[1], "session") && isKeyword(tokens[2], "authorization")))) {
        out.push(...roleList(tokens, isKeyword(tokens[1], "role") ? 2 : 3));
    }
    return [...new Set(out)];
}

/** Every role a list of statements names, sorted. Pure. */
export function neededRoles(statements: readonly Statement[]): string[] {
    return [...new Set(statements.flatMap((s) => roleReferences(s.tokens)))].sort();
}

/** Which of these roles the server lacks. */
export async function missingRoles(client: Client, roles: readonly string[]): Promise<string[]> {
    if (roles.length === 0) {
        return [];
    }
    const r = await client.query<{ name: string }>("SELECT n AS name FROM unnest($1::text[]) n WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = n) ORDER BY 1", [roles]);
    return r.rows.map((x) => x.name);
}

/**
 * The roles to create: the missing needed ones, and the missing roles that are members of them
 * (login roles that reach the database through a group). Throws naming roles the globals lack. Pure.
 */
export function rolesToCreate(missing: readonly string[], globals: Globals | undefined, existing: ReadonlySet<string>): string[] {
    const known = new Set(globals?.roles.map((r) => r.name) ?? []);
    const unknown = missing.filter((r) => !known.has(r));
    if (unknown.length > 0) {
        throw new JobError(
            `the backup needs role(s) ${unknown.join(", ")} that ${globals ? "its globals do not define" : "no globals were stored for (a backup older than globals)"}: ` +
                "create them on the server first (CREATE ROLE ...)",
            2,
        );
    }
    const create = new Set(missing);
    let grew = true;
    while (grew) {
        grew = false;
        for (const m of globals?.memberships ?? []) {
            if (create.has(m.role) && !create.has(m.member) && !existing.has(m.member) && known.has(m.member)) {
                create.add(m.member);
                grew = true;
            }
        }
    }
    // In the source's creation order when known (see globals.ts), so catalog scans list them alike.
    const order = globals?.order ?? [];
    const rank = (r: string) => (order.includes(r) ? order.indexOf(r) : order.length);
    return [...create].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Creates roles from the globals: attributes (no password), settings, comment, and memberships
 * that involve a created role. Only statements built here run; nothing from the file is executed
 * as text except a role setting's value, checked to be one `ALTER ROLE ... SET` statement.
 */
export async function createRoles(client: Client, names: readonly string[], globals: Globals, log: Logger): Promise<void> {
    const created = new Set(names);
    for (const name of names) {
        const role = globals.roles.find((r) => r.name === name)!;
        await client.query(`CREATE ROLE ${quoteIdent(name)}${role.attributes.length ? ` WITH ${role.attributes.join(" ")}` : ""}`);
        for (const setting of role.settings) {
            await client.query({ text: setting, values: [], queryMode: "extended" } as never);
        }
        if (role.comment !== undefined) {
            await client.query(`COMMENT ON ROLE ${quoteIdent(name)} IS ${literal(role.comment)}`);
        }
    }
    for (const m of globals.memberships) {
        if (created.has(m.role) || created.has(m.member)) {
            const exists = await client.query("SELECT 1 FROM pg_roles WHERE rolname = $1 OR rolname = $2", [m.role, m.member]);
            if (exists.rowCount === 2) {
                await client.query(`GRANT ${quoteIdent(m.role)} TO ${quoteIdent(m.member)}${m.admin ? " WITH ADMIN OPTION" : ""}`);
            }
        }
    }
    log.info(`created role(s) ${names.join(", ")} from the backup's globals (without passwords: set them with ALTER ROLE ... PASSWORD)`, { event: "restore.roles-created", roles: names });
}

function literal(s: string): string {
    return `'${s.replace(/'/g, "''")}'`;
}
