/**
 * Hostile review of the dump-stream counts against a real server: real-world schemas that made
 * verify fail a correct backup, or made a restore lose rows while its count check passed.
 */
import { existsSync, readdirSync, readFileSync } from "fs";
import * as path from "path";
import { beforeAll, describe, expect, it } from "vitest";
import { PgCluster, verifyServerEnv } from "../../jobs/dev/services";
import { logLines, newestBackup, runCli } from "../helpers/cli";
import { postgresForFile } from "../helpers/postgresForFile";

let pg: PgCluster;
let work: string;

postgresForFile("kx-dumphostile-", (started, dir) => {
    pg = started;
    work = dir;
});

const env = (db: string, dir: string, extra: Record<string, string> = {}) => ({ ...pg.env(db), BACKUP_LOCAL_DIR: dir, ...extra });
const manifestOf = (dir: string, db: string) => JSON.parse(readFileSync(path.join(dir, db, readdirSync(path.join(dir, db)).filter((f) => f.endsWith(".manifest.json")).sort().pop()!), "utf8"));

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

describe("a table hash-partitioned on an enum (pg_dump loads its partitions through the root)", () => {
    const db = "parts";
    beforeAll(() => {
        pg.psql("postgres", `CREATE DATABASE ${db}`);
        pg.psql(db, "CREATE TYPE state AS ENUM ('new', 'paid', 'shipped', 'cancelled', 'returned');" +
            "CREATE TABLE orders (id int, st state) PARTITION BY HASH (st);" +
            "CREATE TABLE orders_p0 PARTITION OF orders FOR VALUES WITH (MODULUS 3, REMAINDER 0);" +
            "CREATE TABLE orders_p1 PARTITION OF orders FOR VALUES WITH (MODULUS 3, REMAINDER 1);" +
            "CREATE TABLE orders_p2 PARTITION OF orders FOR VALUES WITH (MODULUS 3, REMAINDER 2);" +
            // Distinct counts per value, so a different routing shows in the partitions' counts.
            "INSERT INTO orders SELECT g, (ARRAY['new', 'paid', 'shipped', 'cancelled', 'returned'])[1 + (g % 15 >= 1)::int + (g % 15 >= 3)::int + (g % 15 >= 6)::int + (g % 15 >= 10)::int]::state FROM generate_series(1, 1500) g;" +
            "CREATE TABLE plain_t (a int); INSERT INTO plain_t SELECT generate_series(1, 4);");
    });

    for (const [format, extra] of [["custom", []], ["directory", ["--jobs", "2"]], ["plain", []]] as const) {
        it(`${format}: the manifest counts the tree at its root, verify and a full restore pass`, async () => {
            const dir = path.join(work, `parts-${format}`);
            const b = await runCli(["backup", "--no-prune", "--format", format, ...extra], env(db, dir));
            expect(b.code, b.stderr).toBe(0);
            const m = manifestOf(dir, db);
            expect(m.tables.filter((t: { name: string }) => t.name.startsWith("orders"))).toEqual([{ schema: "public", name: "orders", rows: 1500 }]);
            const name = newestBackup(dir, db, format === "custom" ? ".dump" : format === "plain" ? ".sql" : ".dump.tar");
            const v = await runCli(["verify", "--backup", name, "--from", "local"], env(db, dir, verifyServerEnv(pg)));
            expect(v.code, v.stderr).toBe(0);
            const into = `parts_copy_${format}`;
            const r = await runCli(["restore", "--into", into, "--backup", name, "--from", "local"], env(db, dir));
            expect(r.code, r.stderr).toBe(0);
            expect(pg.psql(into, "SELECT count(*) FROM orders")).toBe("1500");
        }, 240_000);
    }

    it("restore --tables of one partition is refused before anything is touched", async () => {
        const dir = path.join(work, "parts-custom");
        const before = pg.psql(db, "SELECT count(*) FROM ONLY orders_p0");
        const r = await runCli(["restore", "--into", db, "--tables", "orders_p0", "--data-only", "--force", "--no-safety-dump"], env(db, dir));
        expect(r.code, r.stderr).toBe(2);
        expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(/no row count of public\.orders_p0 on its own: its rows load through its partition root/);
        expect(pg.psql(db, "SELECT count(*) FROM ONLY orders_p0")).toBe(before);
        expect(pg.psql(db, "SELECT count(*) FROM orders")).toBe("1500");
    }, 120_000);
});

describe("verify and restore with two pg_restore jobs: inheritance, partitions, a tree loaded through its root", () => {
    // Tables loaded side by side by pg_restore's two workers: an inheritance parent whose child
    // loads after it, range partitions, a tree loaded through its root, and a table whose name
    // holds the word "failed".
    const db = "early";
    beforeAll(() => {
        pg.psql("postgres", `CREATE DATABASE ${db}`);
        pg.psql(db, "CREATE TABLE parent (id int, note text); CREATE TABLE child (extra int) INHERITS (parent);" +
            "INSERT INTO parent SELECT g, 'p' FROM generate_series(1, 2000) g; INSERT INTO child SELECT g, 'c', g FROM generate_series(1, 60000) g;" +
            "CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);" +
            "CREATE TABLE events_a PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');" +
            "CREATE TABLE events_b PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');" +
            "INSERT INTO events SELECT g, DATE '2025-01-01' + g % 700 FROM generate_series(1, 30000) g;" +
            "CREATE TYPE state AS ENUM ('new', 'paid', 'shipped');" +
            "CREATE TABLE orders (id int, st state) PARTITION BY HASH (st);" +
            "CREATE TABLE orders_p0 PARTITION OF orders FOR VALUES WITH (MODULUS 2, REMAINDER 0);" +
            "CREATE TABLE orders_p1 PARTITION OF orders FOR VALUES WITH (MODULUS 2, REMAINDER 1);" +
            "INSERT INTO orders SELECT g, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3]::state FROM generate_series(1, 9000) g;" +
            "CREATE TABLE failed_logins (a int); INSERT INTO failed_logins SELECT generate_series(1, 7);");
    });

    for (const command of ["verify", "restore"] as const) {
        it(`${command}: passes with every count right`, async () => {
            const dir = path.join(work, `early-${command}`);
            const b = await runCli(["backup", "--no-prune"], env(db, dir));
            expect(b.code, b.stderr).toBe(0);
            const name = newestBackup(dir, db, ".dump");
            const r = command === "verify"
                ? await runCli(["verify", "--backup", name, "--from", "local", "--json"], env(db, dir, verifyServerEnv(pg)))
                : await runCli(["restore", "--into", "early_copy", "--backup", name, "--from", "local"], env(db, dir));
            expect(r.code, r.stderr).toBe(0);
            const detail: string = command === "verify"
                ? JSON.parse(r.stdout).steps.find((x: { step: string }) => x.step === "counts").detail
                : logLines(r.stderr).find((l) => l.event === "restore.done")!.msg;
            // parent, child, failed_logins, events_a, events_b and the root orders: 6 tables in the manifest.
            expect(detail).toMatch(/6 table\(s\) match the snapshot's counts$/);
            if (command === "restore") {
                expect(pg.psql("early_copy", "SELECT count(*) FROM ONLY parent")).toBe("2000");
                expect(pg.psql("early_copy", "SELECT count(*) FROM parent")).toBe("62000");
                expect(pg.psql("early_copy", "SELECT count(*) FROM orders")).toBe("9000");
            }
        }, 240_000);
    }
});

describe("a LATIN1 database with accented table names", () => {
    const db = "latin";
    beforeAll(() => {
        pg.psql("postgres", `CREATE DATABASE ${db} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`);
        // A serial column: its sequence "café_id_seq" is a non-ASCII name verify looks up too.
        // Unicode escapes: the names arrive as these characters whatever psql's client encoding.
        const [schema, cafeAcute, cafeGrave] = [String.raw`U&"r\00e8\00e7u"`, String.raw`U&"caf\00e9"`, String.raw`U&"caf\00e8"`];
        pg.psql(db, `CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.${cafeAcute} (a int, id serial); CREATE TABLE ${schema}.${cafeGrave} (a int);` +
            `INSERT INTO ${schema}.${cafeAcute} SELECT generate_series(1, 2); INSERT INTO ${schema}.${cafeGrave} SELECT generate_series(1, 3);`);
    });

    it("custom: the manifest spells the names right, and verify passes", async () => {
        const dir = path.join(work, "latin-custom");
        const b = await runCli(["backup", "--no-prune", "--format", "custom"], env(db, dir));
        expect(b.code, b.stderr).toBe(0);
        const m = manifestOf(dir, db);
        expect(m.tables).toEqual(expect.arrayContaining([{ schema: "rèçu", name: "café", rows: 2 }, { schema: "rèçu", name: "cafè", rows: 3 }]));
        expect(m.toc.filter((e: { desc: string }) => e.desc === "TABLE").map((e: { name: string }) => e.name).sort()).toEqual(["cafè", "café"]);
        const v = await runCli(["verify", "--backup", newestBackup(dir, db, ".dump"), "--from", "local"], env(db, dir, verifyServerEnv(pg)));
        expect(v.code, v.stderr).toBe(0);
    }, 240_000);

    it("plain: the manifest spells the names right, and verify restores it (decoded from LATIN1, sent as UTF-8)", async () => {
        const dir = path.join(work, "latin-plain");
        const b = await runCli(["backup", "--no-prune", "--format", "plain"], env(db, dir));
        expect(b.code, b.stderr).toBe(0);
        expect(manifestOf(dir, db).tables).toEqual(expect.arrayContaining([{ schema: "rèçu", name: "café", rows: 2 }, { schema: "rèçu", name: "cafè", rows: 3 }]));
        const v = await runCli(["verify", "--backup", newestBackup(dir, db, ".sql"), "--from", "local"], env(db, dir, verifyServerEnv(pg)));
        expect(v.code, v.stderr).toBe(0);
    }, 240_000);

    it("restore --tables names an accented table as the database spells it (pg_restore --list alone would read it as UTF-8)", async () => {
        const dir = path.join(work, "latin-tables");
        const b = await runCli(["backup", "--no-prune", "--format", "custom"], env(db, dir));
        expect(b.code, b.stderr).toBe(0);
        pg.psql(db, String.raw`DELETE FROM U&"r\00e8\00e7u".U&"caf\00e9"`);
        const r = await runCli(["restore", "--database", db, "--into", db, "--tables", "rèçu.café", "--data-only", "--force", "--backup", newestBackup(dir, db, ".dump"), "--from", "local"], env(db, dir));
        expect(r.code, r.stderr + r.stdout).toBe(0);
        expect(pg.psql(db, String.raw`SELECT count(*) FROM U&"r\00e8\00e7u".U&"caf\00e9"`)).toBe("2");
        expect(pg.psql(db, String.raw`SELECT count(*) FROM U&"r\00e8\00e7u".U&"caf\00e8"`)).toBe("3");
    }, 240_000);
});

describe("backup --table of a partitioned table", () => {
    it("without its partitions is refused before pg_dump runs; with them, their rows are counted", async () => {
        const db = "ranged";
        pg.psql("postgres", `CREATE DATABASE ${db}`);
        pg.psql(db, "CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);" +
            "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');" +
            "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');" +
            "INSERT INTO events SELECT g, DATE '2025-06-01' + g FROM generate_series(1, 400) g;");
        const dir = path.join(work, "ranged");
        const refused = await runCli(["backup", "--no-prune", "--table", "events"], env(db, dir));
        expect(refused.code, refused.stderr).toBe(2);
        expect(logLines(refused.stderr).find((l) => l.level === "error")?.msg).toMatch(/partitioned table public\.events but not its partitions public\.events_2025, public\.events_2026: pg_dump would save none of their rows/);
        expect(existsSync(path.join(dir, db)) ? readdirSync(path.join(dir, db)) : []).toEqual([]);
        const b = await runCli(["backup", "--no-prune", "--table", "events*"], env(db, dir));
        expect(b.code, b.stderr).toBe(0);
        const rows = manifestOf(dir, db).tables.reduce((n: number, t: { rows: number }) => n + t.rows, 0);
        expect(rows).toBe(400);
    }, 180_000);
});
