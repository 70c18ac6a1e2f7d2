/**
 * Hostile review of the dump-stream counts against a real server: real-world schemas that made
 * verify fail a correct backup, or made a restore lose rows while its count check passed.
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
    work = mkdtempSync(path.join(os.tmpdir(), "kx-dumphostile-"));
}, 180_000);

afterAll(() => {
    pg?.remove();
    rmSync(work, { recursive: true, force: true });
});

const env = (db: string, dir: string, extra: Record<string, string> = {}) => ({ ...pg.env(db), BACKUP_LOCAL_DIR: dir, ...extra });

describe("restore --tables PARENT --data-only keeps the inheritance children's rows", () => {
    it("only the parent's own rows are replaced", async () => {
        const db = "inh";
        pg.psql("postgres", `CREATE DATABASE ${db}`);
        pg.psql(db, "CREATE TABLE parent (id int, note text); CREATE TABLE child (extra int) INHERITS (parent);" +
            "INSERT INTO parent SELECT g, 'p' FROM generate_series(1, 3) g; INSERT INTO child SELECT g, 'c', g FROM generate_series(1, 5) g;");
        const dir = path.join(work, "inh");
        const b = await runCli(["backup", "--no-prune"], env(db, dir));
        expect(b.code, b.stderr).toBe(0);
        // After the backup: the parent loses a row (what the restore repairs), the child gains one (which must stay).
        pg.psql(db, "DELETE FROM ONLY parent WHERE id = 1; INSERT INTO child VALUES (6, 'c', 6);");
        const r = await runCli(["restore", "--into", db, "--tables", "parent", "--data-only", "--force", "--no-safety-dump"], env(db, dir));
        expect(r.code, r.stderr).toBe(0);
        expect(pg.psql(db, "SELECT count(*) FROM ONLY parent")).toBe("3");
        expect(pg.psql(db, "SELECT count(*) FROM child")).toBe("6");
    }, 180_000);
});
