/**
 * The commit marker written beside a dump once every target holds it. A dump without its
 * manifest is incomplete (or foreign): list, prune and restore treat it so.
 *
 * Version 2 records what a backup is (scope, purpose), how its row counts were obtained, the
 * dump's table of contents, the globals stored beside it, and is signed (HMAC-SHA256) when the
 * job has a signing key. Version 1 manifests (written before) are read and normalized.
 */
import { createHmac, timingSafeEqual } from "crypto";
import { Target, readText } from "./targets";
import { manifestKey } from "./naming";

export const MANIFEST_KIND = "kx-backup/postgres";
export const MANIFEST_KIND_ARCHIVE = "kx-backup/archive";

/** What a backup holds: the whole database, or part of it. Only `full` backups are ever `latest`. */
export type BackupScope = "full" | "schema-only" | "data-only" | "tables";
/** Why it was taken. `safety`: taken by a restore before it replaced a database; `adopted`: a dump kx-backup did not write, checked and taken over. */
export type BackupPurpose = "scheduled" | "manual" | "safety" | "adopted";

/** One table's exact row count in the backup. Schema and name are kept apart: `we.ird.t` is not ambiguous. */
export interface TableCount {
    schema: string;
    name: string;
    rows: number;
}

/** One entry of the dump's table of contents (pg_restore --list), as pg_dump names it. */
export interface TocEntry {
    /** The dump id of the entry. */
    id: number;
    /** pg_dump's description: TABLE, TABLE DATA, SEQUENCE, SEQUENCE SET, BLOB, DATABASE, ACL, … */
    desc: string;
    /** The namespace, "" for objects outside a schema. */
    schema: string;
    /** pg_dump's tag: the object's name (for ACL/COMMENT entries: what they apply to). */
    name: string;
    owner: string;
}

export interface Manifest {
    kind: typeof MANIFEST_KIND | typeof MANIFEST_KIND_ARCHIVE;
    manifestVersion: 2;
    database: string;
    /** Key relative to the target root (`<db>/<name>`). */
    key: string;
    /** The full address of the artifact on each target, prefix included: `s3://bucket/prefix/<db>/<name>`. */
    locations: Record<string, string>;
    /** The run that wrote it (part of the name): a failing run removes only objects of its own run. */
    runId?: string;
    scope: BackupScope;
    purpose: BackupPurpose;
    format: "custom" | "directory" | "plain" | "tar.gz";
    /** What the artifact is: a pg_dump stream, a tar of a directory-format dump, or an archive. */
    container: "pg_dump" | "tar" | "tar.gz";
    options: { schemaOnly: boolean; dataOnly: boolean; tables: string[]; jobs: number };
    startedAt: string;
    finishedAt: string;
    durationMs: number;
    size: number;
    sha256: string;
    pgDump: { version: string };
    /**
     * Set when the job, not pg_dump, compressed the custom-format archive: pg_dump wrote it
     * uncompressed and the job rebuilt it as the zlib archive pg_dump writes, on `threads` threads
     * (dumpstream/recompress.ts). pg_restore reads it as any other.
     */
    compressedByJob?: { level: number; threads: number };
    server: { version: string; versionNum: number };
    /** Exact row counts per table in the backup; empty for schema-only dumps and adopted ones. */
    tables: TableCount[];
    /** How `tables` was obtained. */
    counts: {
        /** `dump-stream`: counted in the dump as it streamed; `snapshot-query`: count(*) in the dump's snapshot (manifest v1); `none`: no counts (schema-only, adopted). */
        method: "dump-stream" | "snapshot-query" | "none";
        /** Large objects in the dump, counted apart from tables. */
        largeObjects?: number;
    };
    /** The dump's table of contents, when known. */
    toc?: TocEntry[];
    /** The cluster's roles, stored beside the dump (pg_dumpall --globals-only --no-role-passwords). */
    globals?: { key: string; size: number; sha256: string; roles: string[] };
    /** Set when this backup is much smaller than the previous good full one (see anomaly.ts). */
    anomaly?: { reasons: string[]; comparedWith: string };
    /** The same findings, accepted by the operator (`backup --accept-anomaly`): this backup is the new baseline. */
    acceptedAnomaly?: { reasons: string[]; comparedWith: string };
    /** For adopted dumps: when and what was checked. */
    adopted?: { at: string; originalName: string; note: string };
    /** Archives only: what the tree held, and its content hash (for --if-changed). */
    archive?: { files: number; totalBytes: number; contentHash: string };
    /** Every target that holds this backup. */
    targets: string[];
    /** HMAC-SHA256 over the canonical JSON of every other field, hex, when the writer had a signing key. */
    signature?: { alg: "HMAC-SHA256"; value: string };
}

/** JSON with object keys sorted at every level: the bytes the signature covers. */
export function canonicalJson(value: unknown): string {
    if (Array.isArray(value)) {
        return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(",")}]`;
    }
    if (value && typeof value === "object") {
        const entries = Object.entries(value as Record<string, unknown>)
            .filter(([, v]) => v !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
    }
    return JSON.stringify(value);
}

function mac(body: unknown, key: string): string {
    return createHmac("sha256", key).update(canonicalJson(body)).digest("hex");
}

/** Returns the manifest signed with `key` (unchanged without a key). */
export function signManifest<T extends { signature?: unknown }>(m: T, key: string | undefined): T {
    const { signature: _drop, ...body } = m;
    if (!key) {
        return body as T;
    }
    return { ...body, signature: { alg: "HMAC-SHA256", value: mac(body, key) } } as T;
}

export type SignatureCheck = "valid" | "unsigned" | "invalid";

/** Checks a manifest's signature against a key. Constant-time comparison. */
export function checkSignature(m: { signature?: { alg?: string; value?: string } }, key: string): SignatureCheck {
    if (!m.signature) {
        return "unsigned";
    }
    const { signature, ...body } = m;
    if (signature.alg !== "HMAC-SHA256" || typeof signature.value !== "string" || !/^[0-9a-f]{64}$/.test(signature.value)) {
        return "invalid";
    }
    const expected = Buffer.from(mac(body, key), "hex");
    const given = Buffer.from(signature.value, "hex");
    return expected.length === given.length && timingSafeEqual(expected, given) ? "valid" : "invalid";
}

export async function writeManifest(target: Target, manifest: Manifest): Promise<void> {
    await target.putSmall(manifestKey(manifest.key), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** A table's key for sets and maps: no schema or table name can make it ambiguous ("a.b"."c" vs "a"."b.c"). */
export function tableKey(t: { schema: string; name: string }): string {
    return `${t.schema}\u0000${t.name}`;
}

/** A table key for messages and maps: quoted only where a plain `schema.name` would be ambiguous. */
export function tableLabel(t: { schema: string; name: string }): string {
    const part = (s: string) => (/^[a-z_][a-z0-9_$]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`);
    return `${part(t.schema)}.${part(t.name)}`;
}

/** Reads a v1 manifest's `schema.table` keys: the first dot splits (v1 could not tell more). */
function tablesFromV1(tables: unknown): TableCount[] {
    if (!tables || typeof tables !== "object" || Array.isArray(tables)) {
        return [];
    }
    return Object.entries(tables as Record<string, number>).map(([k, rows]) => {
        const dot = k.indexOf(".");
        return { schema: k.slice(0, dot), name: k.slice(dot + 1), rows: Number(rows) };
    });
}

function scopeFromOptions(o: Manifest["options"] | undefined): BackupScope {
    if (o?.schemaOnly) {
        return "schema-only";
    }
    if (o?.dataOnly) {
        return "data-only";
    }
    if (o?.tables && o.tables.length > 0) {
        return "tables";
    }
    return "full";
}

/**
 * Parses and checks a manifest's text; v1 manifests are normalized to v2 (their signature, if any,
 * is then meaningless: v1 was never signed). Throws saying what is wrong.
 */
export function parseManifest(text: string, where: string): Manifest {
    let m: Record<string, any>;
    try {
        m = JSON.parse(text);
    } catch (e) {
        throw new Error(`${where} is not JSON: ${(e as Error).message}`);
    }
    if (!m || typeof m !== "object" || (m.kind !== MANIFEST_KIND && m.kind !== MANIFEST_KIND_ARCHIVE) || typeof m.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(m.sha256) || typeof m.size !== "number" || typeof m.key !== "string") {
        throw new Error(`${where} is not a kx-backup manifest`);
    }
    if (m.manifestVersion === 1) {
        const { tables, ...rest } = m;
        return {
            ...rest,
            manifestVersion: 2,
            locations: {},
            scope: m.kind === MANIFEST_KIND_ARCHIVE ? "full" : scopeFromOptions(m.options),
            purpose: "scheduled",
            tables: tablesFromV1(tables),
            counts: { method: m.kind === MANIFEST_KIND_ARCHIVE || m.options?.schemaOnly ? "none" : "snapshot-query" },
        } as Manifest;
    }
    if (m.manifestVersion !== 2) {
        throw new Error(`${where}: manifest version ${m.manifestVersion} is newer than this kx-backup understands; use a newer image`);
    }
    if (!Array.isArray(m.tables) || !["full", "schema-only", "data-only", "tables"].includes(m.scope) || !["scheduled", "manual", "safety", "adopted"].includes(m.purpose)) {
        throw new Error(`${where} is not a valid kx-backup manifest (tables, scope or purpose missing)`);
    }
    return m as Manifest;
}

/** Reads a manifest raw: the text (for signature checks) and the normalized manifest. */
export async function readManifestRaw(target: Target, backupKey: string): Promise<{ raw: Record<string, unknown>; manifest: Manifest }> {
    const text = await readText(target, manifestKey(backupKey));
    const manifest = parseManifest(text, manifestKey(backupKey));
    return { raw: JSON.parse(text), manifest };
}

export async function readManifest(target: Target, backupKey: string): Promise<Manifest> {
    return (await readManifestRaw(target, backupKey)).manifest;
}
