/**
 * Writes pg_dump archives by hand, following pg_backup_archiver.c (WriteHead, WriteToc) and
 * pg_backup_custom.c (_StartData/_EndData, _StartLOs/_StartLO/_EndLO/_EndLOs) of PostgreSQL 17.
 * This machine has only pg_dump 15 (archive 1.14): archives 1.15 (pg_dump 16: the compression
 * algorithm as one header byte instead of a zlib level) and 1.16 (pg_dump 17: a relkind int in
 * every TOC entry, BLOB METADATA entries and several BLOBS entries) are built here from the
 * source's layout, so the reader's handling of them is tested against that layout.
 */
import { deflateSync } from "zlib";

export interface TestEntry {
    id: number;
    desc: string;
    schema?: string;
    name: string;
    /** Written instead of `name`, byte for byte: a name in a non-UTF-8 database's encoding. */
    rawName?: Buffer;
    owner?: string;
    hadDumper?: boolean;
    copyStmt?: string;
    /** Written instead of `copyStmt`, byte for byte (see rawName). */
    rawCopyStmt?: Buffer;
    relkind?: number;
    filename?: string;
    /** The definition (an ENCODING entry's `SET client_encoding = ...;`). */
    defn?: string;
}

class Out {
    private parts: Buffer[] = [];
    byte(b: number): this {
        this.parts.push(Buffer.from([b]));
        return this;
    }
    raw(b: Buffer): this {
        this.parts.push(b);
        return this;
    }
    int(i: number): this {
        const b = Buffer.alloc(5);
        b[0] = i < 0 ? 1 : 0;
        b.writeUInt32LE(Math.abs(i), 1);
        return this.raw(b);
    }
    str(s: string | Buffer | null): this {
        if (s === null) {
            return this.int(-1);
        }
        const b = typeof s === "string" ? Buffer.from(s, "utf8") : s;
        return this.int(b.length).raw(b);
    }
    done(): Buffer {
        return Buffer.concat(this.parts);
    }
}

/** Header and TOC of archive version 1.`minor`. `compression`: the 1.15+ algorithm byte, or the pre-1.15 zlib level. */
export function archiveHead(o: { minor: number; format?: 1 | 3; compression: number; entries: TestEntry[] }): Buffer {
    const out = new Out().raw(Buffer.from("PGDMP")).byte(1).byte(o.minor).byte(0).byte(4).byte(8).byte(o.format ?? 1);
    if (o.minor >= 15) {
        out.byte(o.compression);
    } else {
        out.int(o.compression);
    }
    for (const v of [0, 0, 12, 1, 0, 126, 0]) {
        out.int(v);
    }
    out.str("testdb").str("17.2").str("17.2");
    out.int(o.entries.length);
    for (const e of o.entries) {
        out.int(e.id).int(e.hadDumper ? 1 : 0).str("0").str("0").str(e.rawName ?? e.name).str(e.desc).int(2).str(e.defn ?? "").str("").str(e.rawCopyStmt ?? e.copyStmt ?? "")
            .str(e.schema ?? "").str("").str("");
        if (o.minor >= 16) {
            out.int(e.relkind ?? 0);
        }
        out.str(e.owner ?? "postgres").str("false").str(null);
        if ((o.format ?? 1) === 1) {
            out.byte(e.hadDumper ? 1 : 3).raw(Buffer.alloc(8));
        } else {
            out.str(e.filename ?? "");
        }
    }
    return out.done();
}

/** A table-data block: the COPY text, zlib-compressed or not, in chunks of `chunk` bytes. */
export function dataBlock(id: number, copyText: string, compressed: boolean, chunk = 4096): Buffer {
    const payload = compressed ? deflateSync(Buffer.from(copyText)) : Buffer.from(copyText);
    const out = new Out().byte(1).int(id);
    for (let i = 0; i < payload.length; i += chunk) {
        const part = payload.subarray(i, i + chunk);
        out.int(part.length).raw(part);
    }
    return out.int(0).done();
}

/** A large-objects block holding these objects' contents. */
export function blobsBlock(id: number, objects: { oid: number; data: Buffer }[], compressed: boolean): Buffer {
    const out = new Out().byte(3).int(id);
    for (const o of objects) {
        out.int(o.oid);
        const payload = compressed ? deflateSync(o.data) : o.data;
        if (payload.length > 0) {
            out.int(payload.length).raw(payload);
        }
        out.int(0);
    }
    return out.int(0).done();
}
