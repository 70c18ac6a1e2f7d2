/**
 * `pg_restore --list` output, read back: the archive's header and its table of contents. Pure.
 *
 * Entry lines look like `216; 1259 16389 TABLE public t postgres`: dump id; catalog table oid,
 * object oid; then the description (which may contain spaces: `TABLE DATA`, `MATERIALIZED VIEW
 * DATA`), the namespace (`-` when none), the tag and the owner, all unquoted. A tag may contain
 * spaces too, so the description is matched against pg_dump's known ones, longest first.
 */
import { TocEntry } from "./manifest";

export interface RestoreListing {
    format: string;
    serverVersion: string;
    pgDumpVersion: string;
    dumpVersion: string;
    entries: TocEntry[];
}

/** pg_dump's descriptions; several hold spaces, so the longest match wins (single unknown words are taken as they come). */
const DESCS = [
    "ACCESS METHOD", "ACL", "AGGREGATE", "BLOB", "BLOB DATA", "BLOB METADATA", "BLOBS", "CAST", "CHECK CONSTRAINT", "COLLATION",
    "COMMENT", "CONSTRAINT", "CONVERSION", "DATABASE", "DATABASE PROPERTIES", "DEFAULT", "DEFAULT ACL", "DOMAIN", "ENCODING",
    "EVENT TRIGGER", "EXTENSION", "FK CONSTRAINT", "FOREIGN DATA WRAPPER", "FOREIGN SERVER", "FOREIGN TABLE", "FUNCTION",
    "INDEX", "INDEX ATTACH", "LARGE OBJECT", "LARGE OBJECTS", "MATERIALIZED VIEW", "MATERIALIZED VIEW DATA", "OPERATOR",
    "OPERATOR CLASS", "OPERATOR FAMILY", "POLICY", "PROCEDURAL LANGUAGE", "PROCEDURE", "PUBLICATION", "PUBLICATION TABLE",
    "PUBLICATION TABLES IN SCHEMA", "ROW SECURITY", "RULE", "SCHEMA", "SEARCHPATH", "SECURITY LABEL", "SEQUENCE",
    "SEQUENCE OWNED BY", "SEQUENCE SET", "SERVER", "SHELL TYPE", "STATISTICS", "STATISTICS DATA", "STDSTRINGS", "SUBSCRIPTION",
    "SUBSCRIPTION TABLE", "TABLE", "TABLE ATTACH", "TABLE DATA", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY",
    "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "TRANSFORM", "TRIGGER", "TYPE", "USER MAPPING", "VIEW",
].sort((a, b) => b.length - a.length);

/**
 * The entries of a `pg_restore --list` (run with --create, the DATABASE entries show too). The
 * namespace is told apart from the tag by the schemas the dump itself creates (a schema may hold
 * spaces or dots), and the owner by the roles given (the manifest's globals, when known: a role
 * may hold spaces too), else it is the last word (absent for a few entries, e.g. BLOBS).
 */
export function parseTocEntries(text: string, roles: readonly string[] = []): TocEntry[] {
    const byLength = roles.filter((r) => r.includes(" ")).sort((a, b) => b.length - a.length);
    const raw = text.split("\n").map((l) => /^(\d+);\s+\d+\s+\d+\s+(.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
    const split = (rest: string) => {
        const desc = DESCS.find((d) => rest.startsWith(`${d} `)) ?? rest.split(" ")[0];
        const after = rest.slice(desc.length + 1);
        const role = byLength.find((r) => after.endsWith(` ${r}`));
        const lastSpace = role ? after.length - role.length - 1 : after.lastIndexOf(" ");
        return { desc, nsTag: lastSpace >= 0 ? after.slice(0, lastSpace) : after, owner: lastSpace >= 0 ? after.slice(lastSpace + 1) : "" };
    };
    const schemas = new Set(["public", "pg_catalog"]);
    for (const m of raw) {
        const { desc, nsTag } = split(m[2]);
        if (desc === "SCHEMA" && nsTag.startsWith("- ")) {
            schemas.add(nsTag.slice(2));
        }
    }
    const known = [...schemas].sort((a, b) => b.length - a.length);
    return raw.map((m) => {
        const { desc, nsTag, owner } = split(m[2]);
        if (nsTag.startsWith("- ")) {
            return { id: Number(m[1]), desc, schema: "", name: nsTag.slice(2), owner };
        }
        const schema = known.find((x) => nsTag.startsWith(`${x} `)) ?? nsTag.split(" ")[0];
        return { id: Number(m[1]), desc, schema, name: nsTag.slice(schema.length + 1), owner };
    });
}

export function parseRestoreList(text: string): RestoreListing {
    const header = (label: string) => new RegExp(`^;\\s+${label}:\\s*(.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
    const entries = parseTocEntries(text);
    return {
        format: header("Format"),
        serverVersion: header("Dumped from database version"),
        pgDumpVersion: header("Dumped by pg_dump version"),
        dumpVersion: header("Dump Version"),
        entries,
    };
}
