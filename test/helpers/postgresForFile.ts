/**
 * The e2e files' common frame: one PostgreSQL server and one work directory for the whole file,
 * started before its tests and removed after them (also when a start or `ready` failed).
 */
import { mkdtempSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll } from "vitest";
import { PgCluster, startPostgres } from "../../jobs/dev/services";

/** `ready` receives the server and the directory (to keep them, and to load the file's data). */
export function postgresForFile(prefix: string, ready: (pg: PgCluster, work: string) => void | Promise<void>, timeoutMs = 180_000): void {
    let pg: PgCluster | undefined;
    let work: string | undefined;
    beforeAll(async () => {
        work = mkdtempSync(path.join(os.tmpdir(), prefix));
        pg = await startPostgres();
        await ready(pg, work);
    }, timeoutMs);
    afterAll(() => {
        pg?.remove();
        if (work) {
            rmSync(work, { recursive: true, force: true });
        }
    });
}
