/**
 * What counting a dump yields, and the rules that turn a table of contents plus per-entry row
 * counts into the manifest's `tables`. Pure.
 */
import type { TableCount, TocEntry } from "../manifest";
import { ArchiveEntry, ArchiveHeader, Compression, DumpFormatError } from "./archive";
import { parseCopyTarget } from "./copystmt";

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
 * Rows per table in the order tables first appear; a table loaded by several COPY blocks (the
 * partitions of a tree loaded through its root) gets their sum.
 */
export class RowTally {
    private readonly byKey = new Map<string, TableCount>();

    add(t: { schema: string; name: string }, rows: number): void {
        const key = `${t.schema}\u0000${t.name}`;
        const have = this.byKey.get(key);
        if (have) {
            have.rows += rows;
        } else {
            this.byKey.set(key, { schema: t.schema, name: t.name, rows });
        }
    }

    tables(): TableCount[] {
        return [...this.byKey.values()];
    }
}

/**
 * The manifest's tables: the rows of every TABLE DATA entry (what pg_dump's `COPY t TO stdout`
 * read: the table's own rows, never an inheritance child's), counted against the table its COPY
 * statement loads them into, which is what a restored copy can be compared with: a partition
 * loaded through its partition root (see copystmt.ts) counts toward that root, and verify
 * compares the root's whole tree. Left out: the configuration tables of extensions. Those have
 * data but no TABLE entry in a dump that has TABLE entries (CREATE EXTENSION makes them, and
 * pg_dump saves only the rows its filter selects), so a restored copy's count would not be
 * comparable.
 */
export function tableCounts(entries: readonly ArchiveEntry[], rows: ReadonlyMap<number, number>): TableCount[] {
    const defined = new Set(entries.filter((e) => TABLE_KINDS.has(e.desc)).map((e) => `${e.schema}\u0000${e.name}`));
    const tally = new RowTally();
    for (const e of entries) {
        if (e.desc !== "TABLE DATA" || !rows.has(e.id)) {
            continue;
        }
        if (defined.size > 0 && !defined.has(`${e.schema}\u0000${e.name}`)) {
            continue;
        }
        tally.add(loadTarget(e), rows.get(e.id)!);
    }
    return tally.tables();
}

/** The table a TABLE DATA entry's COPY statement loads into: itself, or its partition root. */
export function loadTarget(e: Pick<ArchiveEntry, "schema" | "name" | "copyStmt">): { schema: string; name: string } {
    // dataEntries() has checked that it is a COPY; one this parser cannot read counts as the entry's own.
    return parseCopyTarget(e.copyStmt.replace(/;\s*$/, "")) ?? { schema: e.schema, name: e.name };
}

/** The manifest-worthy part of an archive header. */
export function archiveInfo(h: ArchiveHeader): NonNullable<DumpCounts["archive"]> {
    return { version: h.version, compression: h.compression, pgDumpVersion: h.pgDumpVersion, serverVersion: h.serverVersion, database: h.database };
}
