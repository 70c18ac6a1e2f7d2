/**
 * What counting a dump yields, and the rules that turn a table of contents plus per-entry row
 * counts into the manifest's `tables`. Pure.
 */
import type { TableCount, TocEntry } from "../manifest";
import { ArchiveEntry, ArchiveHeader, Compression, DumpFormatError } from "./archive";

export type DumpFormat = "custom" | "directory" | "plain";

export interface DumpCounts {
    format: DumpFormat;
    /** Rows per table whose data the dump holds, in dump order. */
    tables: TableCount[];
    /** Large objects in the dump (BLOBS data), counted apart from tables. */
    largeObjects: number;
    /** The table of contents (custom and directory formats; plain SQL has none). */
    toc?: TocEntry[];
    /** What the archive header says (custom and directory formats). */
    archive?: { version: string; compression: Compression; pgDumpVersion: string; serverVersion: string; database: string };
}

/** Anything that reads a dump stream piece by piece and counts it. */
export interface DumpReader {
    /** Resolves once the piece has been consumed (so the caller may send more). */
    push(chunk: Buffer): Promise<void>;
    /** The stream ended: the counts, or why the dump is incomplete or unreadable. */
    end(): Promise<DumpCounts>;
}

/**
 * A table's name for messages, quoted only where needed. The same rule as manifest.ts's
 * tableLabel, kept here because this module also runs in a worker bundle that must not pull in
 * the manifest's storage dependencies.
 */
export function nameLabel(t: { schema: string; name: string }): string {
    const part = (s: string) => (/^[a-z_][a-z0-9_$]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`);
    return t.schema ? `${part(t.schema)}.${part(t.name)}` : part(t.name);
}

/** How messages name an entry: `TABLE DATA public.t (entry 3373)`. */
export function entryLabel(e: Pick<ArchiveEntry, "id" | "desc" | "schema" | "name">): string {
    return `${e.desc} ${e.schema ? nameLabel(e) : e.name} (entry ${e.id})`;
}

/** Entries whose data the dump must carry; a TABLE DATA entry written as INSERTs cannot be counted here. */
export function dataEntries(entries: readonly ArchiveEntry[]): ArchiveEntry[] {
    const out = entries.filter((e) => e.hadDumper);
    for (const e of out) {
        if (e.desc === "TABLE DATA" && !/^COPY /.test(e.copyStmt)) {
            throw new DumpFormatError(`${entryLabel(e)} is written as INSERT statements (pg_dump --inserts): rows are counted from COPY data only`);
        }
        if (e.desc !== "TABLE DATA" && e.desc !== "BLOBS") {
            throw new DumpFormatError(`${entryLabel(e)} carries data of a kind this reader does not know; refusing to guess its counts`);
        }
    }
    return out;
}

const TABLE_KINDS = new Set(["TABLE", "FOREIGN TABLE"]);

/**
 * The manifest's tables: every TABLE DATA entry with its rows (what pg_dump's `COPY t TO stdout`
 * read: the table's own rows, never an inheritance child's), except the configuration tables of
 * extensions. Those have data but no TABLE entry in a dump that has TABLE entries (CREATE
 * EXTENSION makes them, and pg_dump saves only the rows its filter selects), so a restored copy's
 * count would not be comparable.
 */
export function tableCounts(entries: readonly ArchiveEntry[], rows: ReadonlyMap<number, number>): TableCount[] {
    const defined = new Set(entries.filter((e) => TABLE_KINDS.has(e.desc)).map((e) => `${e.schema}\u0000${e.name}`));
    const out: TableCount[] = [];
    for (const e of entries) {
        if (e.desc !== "TABLE DATA" || !rows.has(e.id)) {
            continue;
        }
        if (defined.size > 0 && !defined.has(`${e.schema}\u0000${e.name}`)) {
            continue;
        }
        out.push({ schema: e.schema, name: e.name, rows: rows.get(e.id)! });
    }
    return out;
}

/** The manifest-worthy part of an archive header. */
export function archiveInfo(h: ArchiveHeader): NonNullable<DumpCounts["archive"]> {
    return { version: h.version, compression: h.compression, pgDumpVersion: h.pgDumpVersion, serverVersion: h.serverVersion, database: h.database };
}
