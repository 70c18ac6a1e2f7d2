/**
 * Names in a dump are in the dump's client encoding, which pg_dump sets to the database's own
 * (its ENCODING entry: `SET client_encoding = 'LATIN1';`). Read as UTF-8, a LATIN1 or WIN1252
 * database's `café` becomes `caf\uFFFD`: verify then counts a table that does not exist, and two
 * names differing only in one accented letter become one. Every server encoding is a superset of
 * ASCII whose multibyte sequences hold no ASCII bytes, so the readers scan the bytes as latin1
 * (one char per byte, lossless) and decode names with the dump's encoding once they are known.
 */

/** PostgreSQL's server encodings (pg_wchar.h) as WHATWG TextDecoder labels (Node has full ICU). */
const LABELS: Record<string, string> = {
    LATIN2: "iso-8859-2", LATIN3: "iso-8859-3", LATIN4: "iso-8859-4", LATIN5: "iso-8859-9", LATIN6: "iso-8859-10",
    LATIN7: "iso-8859-13", LATIN8: "iso-8859-14", LATIN9: "iso-8859-15", LATIN10: "iso-8859-16",
    ISO_8859_5: "iso-8859-5", ISO_8859_6: "iso-8859-6", ISO_8859_7: "iso-8859-7", ISO_8859_8: "iso-8859-8",
    WIN1250: "windows-1250", WIN1251: "windows-1251", WIN1252: "windows-1252", WIN1253: "windows-1253", WIN1254: "windows-1254",
    WIN1255: "windows-1255", WIN1256: "windows-1256", WIN1257: "windows-1257", WIN1258: "windows-1258",
    WIN866: "ibm866", WIN874: "windows-874", KOI8R: "koi8-r", KOI8U: "koi8-u",
    EUC_JP: "euc-jp", EUC_JIS_2004: "euc-jp", EUC_KR: "euc-kr", EUC_CN: "gbk",
};

export type NameDecoder = (bytes: Buffer) => string;

/** UTF-8: also what UTF8, SQL_ASCII and encodings without a decoder here read as. */
export const utf8: NameDecoder = (b) => b.toString("utf8");

/**
 * How to read names written in `encoding` (a pg encoding name, any case, `_`/`-` ignored).
 * UTF8 and SQL_ASCII (no conversion: node-postgres sees the bytes as UTF-8 too) and encodings
 * without a decoder here (EUC_TW, MULE_INTERNAL) read as UTF-8, as before.
 */
export function nameDecoder(encoding: string | undefined): NameDecoder {
    return serverEncodingDecoder(encoding ?? "") ?? utf8;
}

/**
 * A decoder for a server encoding other than UTF-8 that can be read here, or undefined (UTF8,
 * SQL_ASCII, client-only encodings such as SJIS whose bytes can hide ASCII, anything unknown).
 * Server encodings are ASCII-safe: lines and SQL tokens can be found in the raw bytes.
 */
export function serverEncodingDecoder(encoding: string): NameDecoder | undefined {
    const key = encoding.toUpperCase().replace(/-/g, "_");
    if (key === "LATIN1" || key === "ISO_8859_1") {
        // Not TextDecoder("latin1"): WHATWG reads that label as windows-1252.
        return (b) => b.toString("latin1");
    }
    const label = LABELS[key] ?? LABELS[key.replace(/_/g, "")];
    if (!label) {
        return undefined;
    }
    const decoder = new TextDecoder(label);
    return (b) => decoder.decode(b);
}

/** The encoding a `SET client_encoding = 'X';` statement (or ENCODING entry) names, if it is one. */
export function clientEncodingOf(sql: string): string | undefined {
    return /^\s*SET\s+client_encoding\s*=\s*'([^']+)'\s*;?\s*$/i.exec(sql)?.[1];
}

/** Re-reads a string that was decoded byte for byte (latin1) with the dump's own encoding. */
export function redecode(s: string, decode: NameDecoder): string {
    // Pure ASCII reads the same in every encoding here: skip the copy.
    return /^[\x00-\x7f]*$/.test(s) ? s : decode(Buffer.from(s, "latin1"));
}
