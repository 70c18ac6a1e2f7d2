/**
 * A dump's table of contents, and choosing entries from it: the tables `--tables` names, the
 * database's own entries, sequences' values, large objects. `readToc` (prepare.ts) reads it with
 * `pg_restore --list`, parsed in ../toc.ts: the one place to swap for a TOC read from the dump
 * stream (manifest.toc) once every backup records one.
 */
import { JobError } from "../log";
import { tableKey, tableLabel, TocEntry } from "../manifest";

/** A `pg_restore -L` list selecting exactly these entries (pg_restore reads the leading ids). Pure. */
export function useList(entries: readonly TocEntry[]): string {
    return entries.map((e) => `${e.id}; ${e.desc} ${e.schema || "-"} ${e.name.replace(/\n/g, " ")}\n`).join("");
}

export interface TableRef {
    schema: string;
    name: string;
}

/**
 * Splits one `--tables` item into schema and name parts with SQL's rules: unquoted parts fold to
 * lower case and may hold `*` and `?` wildcards; "double-quoted" parts are exact ("" is a quote).
 * `we.ird.t` is refused as ambiguous: write `"we.ird".t`. Pure; throws a usage error.
 */
export function parseTableName(item: string): { schema?: RegExp; name: RegExp; text: string } {
    const parts: { re: string }[] = [];
    let re = "";
    let i = 0;
    let quoted = false;
    let sawAny = false;
    while (i < item.length) {
        const c = item[i];
        if (quoted) {
            if (c === '"' && item[i + 1] === '"') {
                re += '"';
                i += 2;
                continue;
            }
            if (c === '"') {
                quoted = false;
                i++;
                continue;
            }
            re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
            i++;
            continue;
        }
        if (c === '"') {
            quoted = true;
            sawAny = true;
            i++;
            continue;
        }
        if (c === ".") {
            parts.push({ re });
            re = "";
            i++;
            continue;
        }
        sawAny = true;
        re += c === "*" ? ".*" : c === "?" ? "." : c.toLowerCase().replace(/[.+^${}()|[\]\\/]/g, "\\$&");
        i++;
    }
    if (quoted) {
        throw new JobError(`--tables ${item}: unterminated quote`, 2);
    }
    parts.push({ re });
    if (!sawAny || parts.length > 2 || parts.some((p) => p.re === "")) {
        throw new JobError(`--tables ${item}: expected [schema.]table (quote names holding dots or capitals: "MyTable", "we.ird".t)`, 2);
    }
    const anchor = (p: string) => new RegExp(`^${p}$`, "s");
    return parts.length === 2 ? { schema: anchor(parts[0].re), name: anchor(parts[1].re), text: item } : { name: anchor(parts[0].re), text: item };
}

/**
 * Resolves `--tables` items to the exact tables of the dump (its TABLE entries). An unqualified
 * name must be unique across schemas; wildcards expand to every match; an item matching nothing
 * is refused. Exit 2, before anything is touched. Pure.
 */
export function resolveTables(toc: readonly TocEntry[], items: readonly string[]): TableRef[] {
    // A data-only backup (the runbook's §4.3 pairs one with --data-only restores) holds no TABLE
    // entries, only TABLE DATA: its tables are named by their data.
    const definitions = toc.some((e) => e.desc === "TABLE");
    const tables = toc.filter((e) => e.desc === (definitions ? "TABLE" : "TABLE DATA"));
    const chosen = new Map<string, TableRef>();
    const problems: string[] = [];
    for (const item of items) {
        const p = parseTableName(item);
        const matches = tables.filter((t) => p.name.test(t.name) && (p.schema ? p.schema.test(t.schema) : true));
        const wildcard = /[*?]/.test(item.replace(/"[^"]*"/g, ""));
        if (matches.length === 0) {
            const folded = /[A-Z]/.test(item.replace(/"[^"]*"/g, "")) ? ` (unquoted names fold to lower case: quote it, "${item.replace(/"/g, "")}")` : "";
            problems.push(`${item}: no such table in the backup${folded}`);
        } else if (!p.schema && !wildcard && new Set(matches.map((m) => m.schema)).size > 1) {
            problems.push(`${item} is in several schemas (${matches.map((m) => tableLabel(m)).join(", ")}): name the schema`);
        }
        for (const m of matches) {
            chosen.set(tableKey(m), { schema: m.schema, name: m.name });
        }
    }
    if (problems.length > 0) {
        const sample = tables.slice(0, 12).map((t) => tableLabel(t)).join(", ");
        throw new JobError(`--tables: ${problems.join("; ")} (the backup has ${tables.length} table(s)${tables.length ? `: ${sample}${tables.length > 12 ? ", …" : ""}` : ""})`, 2);
    }
    return [...chosen.values()];
}

/** The entries of the dump that belong to these tables: their definition and/or data. Pure. */
export function tableEntries(toc: readonly TocEntry[], tables: readonly TableRef[], descs: readonly string[]): TocEntry[] {
    const keys = new Set(tables.map(tableKey));
    return toc.filter((e) => descs.includes(e.desc) && keys.has(tableKey(e)));
}

/** The database's own entries: CREATE DATABASE, its properties, comment, ACL. Pure. */
export function databaseEntries(toc: readonly TocEntry[]): TocEntry[] {
    return toc.filter((e) => e.desc === "DATABASE" || e.desc === "DATABASE PROPERTIES" || ((e.desc === "COMMENT" || e.desc === "ACL" || e.desc === "SECURITY LABEL") && e.name.startsWith("DATABASE ")));
}

/** Large objects' OIDs, one BLOB entry each; undefined when the dump groups them in ranges (pg_dump 17+). Pure. */
export function largeObjectIds(toc: readonly TocEntry[]): string[] | undefined {
    if (toc.some((e) => e.desc === "BLOB METADATA" || e.desc === "LARGE OBJECT")) {
        return undefined;
    }
    // The tag is the OID (a role with spaces owning it could blur the tag's end).
    return toc.filter((e) => e.desc === "BLOB").map((e) => e.name.split(" ")[0]);
}
