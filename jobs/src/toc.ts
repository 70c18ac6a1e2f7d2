/**
 * `pg_restore --list` output, read back: the archive's header and its table of contents. Pure.
 *
 * Entry lines look like `216; 1259 16389 TABLE public t postgres`: dump id; catalog table oid,
 * object oid; then the description (which may contain spaces: `TABLE DATA`, `MATERIALIZED VIEW
 * DATA`), the namespace (`-` when none), the tag and the owner. A tag may contain spaces too, so
 * the description is matched against pg_dump's known ones, longest first.
 */
import { TocEntry } from "./manifest";

export interface RestoreListing {
    format: string;
    serverVersion: string;
    pgDumpVersion: string;
    dumpVersion: string;
    entries: TocEntry[];
}

/** pg_dump's multi-word descriptions; single words are taken as they come. */
const MULTI_WORD_DESCS = [
    "MATERIALIZED VIEW DATA", "DEFAULT ACL", "DATABASE PROPERTIES", "TABLE DATA", "SEQUENCE SET", "SEQUENCE OWNED BY",
    "MATERIALIZED VIEW", "FK CONSTRAINT", "CHECK CONSTRAINT", "FOREIGN TABLE", "FOREIGN DATA WRAPPER", "USER MAPPING",
    "TEXT SEARCH PARSER", "TEXT SEARCH DICTIONARY", "TEXT SEARCH TEMPLATE", "TEXT SEARCH CONFIGURATION", "OPERATOR CLASS",
    "OPERATOR FAMILY", "EVENT TRIGGER", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "SHELL TYPE", "BLOB DATA",
    "ROW SECURITY", "INDEX ATTACH", "TABLE ATTACH", "PROCEDURAL LANGUAGE", "STATISTICS DATA", "LARGE OBJECT",
].sort((a, b) => b.length - a.length);

export function parseRestoreList(text: string): RestoreListing {
    const header = (label: string) => new RegExp(`^;\\s+${label}:\\s*(.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
    const entries: TocEntry[] = [];
    for (const line of text.split("\n")) {
        const m = /^(\d+);\s+\d+\s+\d+\s+(.*)$/.exec(line);
        if (!m) {
            continue;
        }
        const rest = m[2];
        const desc = MULTI_WORD_DESCS.find((d) => rest.startsWith(`${d} `)) ?? rest.split(" ")[0];
        const fields = rest.slice(desc.length + 1);
        const space = fields.indexOf(" ");
        const schema = fields.slice(0, space);
        // The owner is the last word (absent for a few entries, e.g. BLOBS).
        const tail = fields.slice(space + 1);
        const lastSpace = tail.lastIndexOf(" ");
        const name = lastSpace >= 0 ? tail.slice(0, lastSpace) : tail;
        const owner = lastSpace >= 0 ? tail.slice(lastSpace + 1) : "";
        entries.push({ id: Number(m[1]), desc, schema: schema === "-" ? "" : schema, name, owner });
    }
    return {
        format: header("Format"),
        serverVersion: header("Dumped from database version"),
        pgDumpVersion: header("Dumped by pg_dump version"),
        dumpVersion: header("Dump Version"),
        entries,
    };
}
