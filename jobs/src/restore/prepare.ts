/**
 * Everything a restore learns from the backup before it touches a server: the table of contents,
 * the database's own entries, the roles the dump names, and what the restored database must
 * match (schema text, sequences' values, large objects). Read-only; the downloaded dump stays in
 * the fetch directory (owner-only), and so do the lists written here.
 */
import { createReadStream, writeFileSync } from "fs";
import * as path from "path";
import { Fetched, Located } from "../fetch";
import { JobError } from "../log";
import { TocEntry } from "../manifest";
import { ClientTools } from "../pgtools";
import { Expected, parseSequenceValues } from "./compare";
import { DatabaseDefinition, parseDatabaseEntries } from "./database";
import { neededRoles, roleReferences } from "./roles";
import { scriptStatements } from "./script";
import { splitStatements } from "./sqlLexer";
import { readDumpToc } from "../dumpstream";
import { parseTocEntries } from "../toc";
import { databaseEntries, largeObjectIds, useList } from "./toc";
import { settled } from "../settled";
import { toolText } from "./tools";

export interface Prepared {
    located: Located;
    fetched: Fetched;
    tools: ClientTools;
    plain: boolean;
    /** Empty for plain-format backups. */
    toc: TocEntry[];
    /** The database's own entries; undefined for plain-format backups (they carry none). */
    database?: DatabaseDefinition;
    /** Every role the dump names. */
    roles: string[];
    expected: Expected;
}

/**
 * How many of prepare's pg_restore reads may run at once. Each pg_restore holds the whole table of
 * contents in memory (about 6.5 MB each for a dump of 3,000 tables with primary keys, measured in
 * review), so its size sets the cost: up to 10,000 entries all run together; beyond, one at a
 * time, so a large schema never needs four TOCs within the pod's memory limit where the reads one
 * after another needed one. Pure.
 */
export function readsAtOnce(tocEntries: number): number {
    return tocEntries <= 10_000 ? 4 : 1;
}

/**
 * Runs the reads all at once when `atOnce` covers them, else one after another; either way every
 * one started has finished when this returns or throws (settled).
 */
export async function runReads<T extends readonly unknown[]>(reads: { [K in keyof T]: () => Promise<T[K]> }, atOnce: number): Promise<T> {
    if (atOnce >= reads.length) {
        return settled(reads.map((r) => r()) as { [K in keyof T]: Promise<T[K]> });
    }
    const out: unknown[] = [];
    for (const r of reads) {
        out.push(await r());
    }
    return out as unknown as T;
}

/** Writes a pg_restore use-list (-L) beside the download (owner-only directory). */
export function writeUseList(fetched: Fetched, name: string, entries: readonly TocEntry[]): string {
    const file = path.join(path.dirname(fetched.input), `${name}.list`);
    writeFileSync(file, useList(entries), { mode: 0o600 });
    return file;
}

/** Reads a dump's table of contents (see toc.ts: the one place to read it from manifest.toc instead). */
export async function readToc(tools: ClientTools, fetched: Fetched, located: Located): Promise<TocEntry[]> {
    // pg_restore --list prints names in the dump's encoding and declares none: read as UTF-8, a
    // LATIN1 database's `café` is `caf\uFFFD`, a table no server has. The archive's own table of
    // contents, decoded with the encoding its ENCODING entry names, spells them right (and needs
    // no guess where a name holds a space); the ids tie the two together. Both read at once.
    // (One after another for a large schema, or one the manifest does not size: see readsAtOnce.)
    const [list, own] = await runReads([
        () => toolText(tools, "pg_restore", ["--list", "--create", fetched.input], undefined, `pg_restore --list of ${located.entry.key}`),
        () => readDumpToc(fetched.input).catch(() => undefined),
    ], readsAtOnce(located.manifest.toc?.length ?? Infinity));
    const listed = parseTocEntries(list, located.manifest.globals?.roles);
    const byId = new Map((own?.entries ?? []).map((e) => [e.id, e]));
    return listed.map((e) => {
        const o = byId.get(e.id);
        return o && o.desc === e.desc ? { ...e, schema: o.schema, name: o.name, owner: o.owner } : e;
    });
}

export async function prepare(located: Located, fetched: Fetched, tools: ClientTools): Promise<Prepared> {
    const key = located.entry.key;
    if (located.manifest.format === "plain") {
        const refs = new Set<string>();
        await scriptStatements(createReadStream(fetched.input), { label: `plain backup ${key}` }, (tokens) => {
            for (const r of roleReferences(tokens)) {
                refs.add(r);
            }
        });
        return {
            located, fetched, tools, plain: true, toc: [], roles: [...refs].sort(),
            expected: { schemaSkip: "plain-format backups carry no table of contents to compare with" },
        };
    }
    const toc = await readToc(tools, fetched, located);
    const pgRestore = (args: string[], what: string) => toolText(tools, "pg_restore", [...args, "--file", "-", fetched.input], undefined, `pg_restore ${what} of ${key}`);
    // Large objects' owners and grants are not schema: read their entries apart (never their data).
    const largeObjects = toc.filter((e) => e.desc === "BLOB" || e.desc === "BLOB METADATA" || (e.desc === "ACL" && e.name.startsWith("LARGE OBJECT")));
    const sequenceSets = toc.filter((e) => e.desc === "SEQUENCE SET");
    // Four reads of the same file, each a pg_restore of its own, on the path to every restore's
    // first byte: side by side (about 0.1 s saved on a 200 MB dump), unless the schema is large
    // (see readsAtOnce).
    const [databaseSql, schemaSql, largeObjectSql, sequenceSql] = await runReads([
        () => pgRestore(["--create", "--use-list", writeUseList(fetched, "database", databaseEntries(toc))], "--create (database entries)"),
        () => pgRestore(["--schema-only", "--create"], "--schema-only"),
        async () => (largeObjects.length === 0 ? "" : pgRestore(["--use-list", writeUseList(fetched, "large-objects", largeObjects)], "large object owners")),
        async () => (sequenceSets.length === 0 ? "" : pgRestore(["--data-only", "--use-list", writeUseList(fetched, "sequences", sequenceSets)], "sequence values")),
    ], readsAtOnce(toc.length));
    const database = parseDatabaseEntries(databaseSql);
    let roles: string[];
    try {
        roles = neededRoles([...splitStatements(schemaSql), ...splitStatements(largeObjectSql)]);
    } catch (e) {
        throw new JobError(`the schema of ${key}: ${(e as Error).message}`);
    }
    const sequences = sequenceSets.length === 0 ? [] : parseSequenceValues(sequenceSql);
    const dumpMajor = Number(located.manifest.pgDump.version.split(".")[0]);
    return {
        located, fetched, tools, plain: false, toc, database, roles,
        expected: {
            ...(dumpMajor === tools.major
                ? { schemaSql, databaseText: database.sourceText }
                : { schemaSkip: `the dump was written by pg_dump ${located.manifest.pgDump.version}, the server's tools are ${tools.version}: their SQL differs in form` }),
            sequences,
            largeObjects: largeObjectIds(toc),
        },
    };
}
