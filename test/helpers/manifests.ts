import { createHash } from "crypto";
import { Manifest } from "../../jobs/src/manifest";

/** A valid v2 manifest for a seeded artifact (the body's real size and sha256), for layout tests. */
export function manifestFor(key: string, body: string | Buffer, over: Partial<Manifest> = {}): Manifest {
    const database = key.slice(0, key.indexOf("/"));
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
    return {
        kind: "kx-backup/postgres",
        manifestVersion: 2,
        database,
        key,
        locations: {},
        scope: "full",
        purpose: "scheduled",
        format: "custom",
        container: "pg_dump",
        options: { schemaOnly: false, dataOnly: false, tables: [], jobs: 1 },
        startedAt: new Date().toISOString(),
        finishedAt: new Date().toISOString(),
        durationMs: 1,
        size: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        pgDump: { version: "15.18" },
        server: { version: "15.18", versionNum: 150018 },
        tables: [],
        counts: { method: "dump-stream" },
        targets: ["local"],
        ...over,
    };
}
