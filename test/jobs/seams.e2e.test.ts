/**
 * The seams between counting from the dump stream and restoring or verifying what was counted,
 * end to end: the bundled CLI against a real PostgreSQL. Each test fails without its fix.
 */
import { mkdtempSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgCluster, startPostgres } from "../../jobs/dev/services";
import { runCli } from "../helpers/cli";

let pg: PgCluster;
let work: string;

beforeAll(async () => {
    pg = await startPostgres();
    work = mkdtempSync(path.join(os.tmpdir(), "kx-seams-e2e-"));
}, 120_000);

afterAll(() => {
    pg?.remove();
    rmSync(work, { recursive: true, force: true });
});

function env(db: string, dir: string, extra: Record<string, string> = {}): Record<string, string> {
    return { ...pg.env(db), BACKUP_LOCAL_DIR: path.join(work, dir), ...extra };
}

describe("restore --tables --data-only of an inheritance parent (counts from the dump stream)", () => {
    const DB = "kx_inherit";

    it("replaces the parent's own rows and leaves its children's rows alone", async () => {
        pg.psql("postgres", `CREATE DATABASE ${DB}`);
        // The pre-partitioning layout: a parent with a few rows of its own, a child per month.
        pg.psql(DB, `
            CREATE TABLE events (id int PRIMARY KEY, at date NOT NULL);
            CREATE TABLE events_2026_05 () INHERITS (events);
            CREATE TABLE events_2026_06 () INHERITS (events);
            INSERT INTO events SELECT g, '2026-04-30' FROM generate_series(1, 5) g;
            INSERT INTO events_2026_05 SELECT g, '2026-05-15' FROM generate_series(100, 1099) g;
            INSERT INTO events_2026_06 SELECT g, '2026-06-15' FROM generate_series(2000, 2499) g;`);
        const b = await runCli(["backup", "--no-prune"], env(DB, "inherit"));
        expect(b.code, b.stderr).toBe(0);
        // A careless fix of the parent's own rows after the backup.
        pg.psql(DB, "DELETE FROM ONLY events WHERE id > 2");

        const r = await runCli(["restore", "--into", DB, "--tables", "events", "--data-only", "--force", "--no-safety-dump"], env(DB, "inherit"));
        expect(r.code, r.stderr).toBe(0);
        expect(pg.psql(DB, "SELECT count(*) FROM ONLY events")).toBe("5");
        // Without ONLY, emptying the parent emptied both children, the load brought back the
        // parent's 5 rows, and its count check (FROM ONLY, as the dump counted) passed.
        expect(pg.psql(DB, "SELECT count(*) FROM events_2026_05")).toBe("1000");
        expect(pg.psql(DB, "SELECT count(*) FROM events_2026_06")).toBe("500");
    }, 120_000);
});
