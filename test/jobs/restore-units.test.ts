/**
 * The pure parts of restore and verify: the SQL lexer and the plain-backup reader (no backup runs
 * a command), the table of contents and `--tables` resolution, the database's own entries, the
 * globals, role references, the plan, the verify rotation, the schema comparison, child envs.
 */
import { mkdtempSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { Readable } from "stream";
import { describe, expect, it } from "vitest";
import { splitTables } from "../../jobs/src/cli";
import { describeConnectError, libpqEnv, VERIFY_VARS } from "../../jobs/src/db";
import { parseGlobals } from "../../jobs/src/globals";
import { settingsFrom } from "../helpers/settings";
import { missingLines, normalizeSchema, parseSequenceValues } from "../../jobs/src/restore/compare";
import { rotationTarget } from "../../jobs/src/restore/copies";
import { parseDatabaseEntries } from "../../jobs/src/restore/database";
import { planRestore, RestoreFlags, workName } from "../../jobs/src/restore/plan";
import { retryNote } from "../../jobs/src/restore/restore";
import { roleReferences, rolesToCreate } from "../../jobs/src/restore/roles";
import { classify, scanScript, ScriptSink } from "../../jobs/src/restore/script";
import { splitStatements, tokenize } from "../../jobs/src/restore/sqlLexer";
import { resolveTables } from "../../jobs/src/restore/toc";
import { parseTocEntries } from "../../jobs/src/toc";
import { settled } from "../../jobs/src/settled";
import { fetchVerified } from "../../jobs/src/fetch";
import { ScratchSpaceError } from "../../jobs/src/scratch";
import { readsAtOnce, runReads } from "../../jobs/src/restore/prepare";

/** What a script scan hands to a sink: statements, and COPY data as data. */
async function scan(sql: string, o: { inTransaction?: boolean } = {}): Promise<{ statements: string[]; data: string[] }> {
    const out = { statements: [] as string[], data: [] as string[] };
    const sink: ScriptSink = {
        statement: async (s) => void out.statements.push(s.trim()),
        copyBegin: async (s) => void out.statements.push(s.trim()),
        copyData: async (d) => void out.data.push(d.toString("utf8")),
        copyEnd: async () => 0,
        abort: async () => undefined,
    };
    await scanScript(Readable.from([Buffer.from(sql, "utf8")]), sink, { label: "test.sql", ...o });
    return out;
}

describe("plain backups cannot run commands", () => {
    it.each([
        ["a \\! line", "SELECT 1;\n\\! touch /tmp/kx-pwned\nSELECT 2;\n", /line 2: psql meta-command \\! refused/],
        ["\\! after a statement on the same line", "SELECT 1; \\! id\n", /line 1: psql meta-command \\! refused/],
        ["a \\! right after a closed string", "SELECT 'a'\\! id\n", /meta-command \\! refused/],
        ["\\o to a file", "\\o /tmp/x\n", /meta-command \\o refused/],
        ["\\copy from a program", "\\copy t from program 'id'\n", /meta-command \\copy refused/],
        ["\\connect elsewhere", "\\connect postgres\n", /\\connect refused.*--create/],
        ["\\restrict followed by another command", "\\restrict abc \\! id\n", /meta-command \\restrict refused/],
        ["a \\! hidden after COPY on its line", "COPY t (a) FROM stdin; \\! id\n1\n\\.\n", /meta-command \\! refused/],
        ["text after COPY FROM stdin on its line", "COPY t (a) FROM stdin; SELECT 1;\n1\n\\.\n", /text after COPY/],
        ["COPY FROM PROGRAM", "COPY t FROM PROGRAM 'id';\n", /COPY other than FROM stdin refused/],
        ["a switch to an encoding whose bytes hide backslashes", "SET client_encoding = 'SJIS';\n", /client encoding SJIS is not supported/],
        ["a string that never ends", "SELECT 'open\n", /ends inside a string/],
    ])("refuses %s, before anything after it runs", async (_what, sql, message) => {
        await expect(scan(sql)).rejects.toThrow(message);
    });

    it("stops at the forged line: nothing after it reaches the server", async () => {
        const seen: string[] = [];
        const sink: ScriptSink = { statement: async (s) => void seen.push(s.trim()), copyBegin: async () => undefined, copyData: async () => undefined, copyEnd: async () => 0, abort: async () => undefined };
        await expect(scanScript(Readable.from([Buffer.from("SELECT 1;\n\\! id\nDROP TABLE x;\n")]), sink, { label: "t" })).rejects.toThrow();
        expect(seen).toEqual(["SELECT 1;"]);
    });

    it("reads a legitimate backslash-heavy dump: COPY data, E'' strings, dollar bodies, comments, identifiers", async () => {
        const sql = [
            "\\restrict Ab12Cd",
            "SET standard_conforming_strings = on;",
            "-- Name: a\\b; comments hold backslashes \\! too",
            'CREATE TABLE "we\\ird" (id int, note text);',
            "CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $body$",
            "BEGIN RETURN E'\\\\! not a command'; END",
            "$body$;",
            "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $$ SELECT '\\x' $$;",
            "SELECT E'it\\'s \\\\ here; \\! still a string';",
            "SELECT 'plain \\ backslash';",
            "/* block \\! comment /* nested */ still \\o comment */ SELECT 1;",
            'COPY public."we\\ird" (id, note) FROM stdin;',
            "1\ta\\\\b\\tc\\N",
            "2\t\\!not a command",
            "3\t\\N",
            "\\.",
            "CREATE FUNCTION h() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;",
            "\\unrestrict Ab12Cd",
            "",
        ].join("\n");
        const r = await scan(sql);
        expect(r.data.join("")).toBe("1\ta\\\\b\\tc\\N\n2\t\\!not a command\n3\t\\N\n");
        expect(r.statements).toHaveLength(9);
        expect(r.statements.at(-1)).toMatch(/^CREATE FUNCTION h\(\) .*BEGIN ATOMIC SELECT 1; SELECT 2; END;$/);
        expect(r.statements[r.statements.length - 2]).toMatch(/^COPY public\."we\\ird"/);
    });

    it("follows standard_conforming_strings as the server does", async () => {
        // Off: a backslash escapes the quote, so the string runs on and the semicolon is inside it.
        const r = await scan("SET standard_conforming_strings = off;\nSELECT 'a\\'; b';\n");
        expect(r.statements).toEqual(["SET standard_conforming_strings = off;", "SELECT 'a\\'; b';"]);
    });

    it("refuses to end or split the caller's transaction when asked to", async () => {
        await expect(scan("DELETE FROM t;\nCOMMIT;\n", { inTransaction: true })).rejects.toThrow(/COMMIT refused: this restore runs in one transaction/);
        expect((await scan("BEGIN;\nSELECT 1;\nCOMMIT;\n")).statements).toHaveLength(3);
    });

    it("classifies statements by their first words", () => {
        const kind = (sql: string) => classify(splitStatements(sql)[0].tokens);
        expect(kind("COPY t (a) FROM stdin")).toBe("copy-in");
        expect(kind("COPY t FROM STDOUT")).toBe("copy-in");
        expect(kind("COPY (SELECT * FROM stdin) TO STDOUT")).toBe("copy-other");
        expect(kind("SET NAMES 'SJIS'")).toBe("encoding");
        expect(kind("start transaction")).toBe("transaction");
        expect(kind("SELECT 'copy t from stdin'")).toBe("plain");
    });
});

describe("the SQL lexer", () => {
    it("tells strings, identifiers, dollar quotes and comments apart", () => {
        const t = tokenize(`SELECT $a$ x $b$ ; $a$, "Q""d", abc$d$, 'it''s' -- c ; \n, U&"x", 1e5, $1;`);
        expect(t.filter((x) => x.t === "semi")).toHaveLength(1);
        expect(t.find((x) => x.t === "string" && x.kind === "dollar")).toMatchObject({ v: " x $b$ ; " });
        expect(t.find((x) => x.t === "qident")).toMatchObject({ v: 'Q"d' });
        expect(t.find((x) => x.t === "ident" && x.v.startsWith("abc"))).toMatchObject({ v: "abc$d$" });
        expect(t.some((x) => x.t === "backslash")).toBe(false);
    });
    it("continues a string only across a newline, as PostgreSQL does", () => {
        expect(splitStatements("SELECT 'a'\n'b;c';").map((s) => s.text)).toEqual(["SELECT 'a'\n'b;c'"]);
        expect(splitStatements("SELECT 'a' 'b'; SELECT 1;")).toHaveLength(2);
    });
    it("drops \\restrict and \\connect lines, refuses other meta-commands, keeps backslashes in strings", () => {
        expect(splitStatements("\\restrict k\nSELECT 1;\n\\connect db\nSELECT '\n\\x';\n").map((s) => s.text.trim())).toEqual(["SELECT 1", "SELECT '\n\\x'"]);
        expect(() => splitStatements("SELECT 1;\n\\! id\n")).toThrow(/line 2: psql meta-command \\! refused/);
    });
});

describe("table of contents and --tables", () => {
    const list = [
        ";",
        "; Selected TOC Entries:",
        "3381; 1262 16387 DATABASE - rich exchange",
        "3382; 0 0 COMMENT - DATABASE rich exchange",
        "7; 2615 16388 SCHEMA - ledger exchange",
        "6; 2615 16408 SCHEMA - we.ird postgres",
        "5; 2615 16409 SCHEMA - My Schema postgres",
        "218; 1259 16397 TABLE ledger entries postgres",
        "219; 1259 16405 TABLE public MyTable postgres",
        "216; 1259 16389 TABLE public entries postgres",
        "225; 1259 16389 TABLE public orders postgres",
        "226; 1259 16389 TABLE public order_items postgres",
        "220; 1259 16409 TABLE we.ird t postgres",
        "221; 1259 16409 TABLE My Schema odd name postgres",
        "3369; 0 16397 TABLE DATA ledger entries postgres",
        "3374; 2613 16413 BLOB - 16413 postgres",
        "3375; 0 0 BLOBS - BLOBS ",
        "3388; 0 0 SEQUENCE SET ledger entries_id_seq postgres",
    ].join("\n");
    const toc = parseTocEntries(list);

    it("parses descriptions with spaces, schemas with dots and spaces, and owners", () => {
        expect(toc.find((e) => e.id === 3369)).toEqual({ id: 3369, desc: "TABLE DATA", schema: "ledger", name: "entries", owner: "postgres" });
        expect(toc.find((e) => e.id === 220)).toMatchObject({ schema: "we.ird", name: "t" });
        expect(toc.find((e) => e.id === 221)).toMatchObject({ schema: "My Schema", name: "odd name" });
        expect(toc.find((e) => e.id === 3382)).toMatchObject({ desc: "COMMENT", schema: "", name: "DATABASE rich" });
        expect(toc.find((e) => e.id === 3375)).toMatchObject({ desc: "BLOBS", name: "BLOBS", owner: "" });
    });

    it("tells an owner whose name holds a space from the tag, given the roles", () => {
        const spaced = "3374; 2613 16413 BLOB - 16413 Report Users\n219; 1259 16405 TABLE public my table Report Users\n";
        expect(parseTocEntries(spaced, ["Report Users", "exchange"])).toEqual([
            { id: 3374, desc: "BLOB", schema: "", name: "16413", owner: "Report Users" },
            { id: 219, desc: "TABLE", schema: "public", name: "my table", owner: "Report Users" },
        ]);
    });

    it("resolves schema-qualified, quoted and wildcard names to exact tables", () => {
        expect(resolveTables(toc, ["ledger.entries"])).toEqual([{ schema: "ledger", name: "entries" }]);
        expect(resolveTables(toc, ['"MyTable"'])).toEqual([{ schema: "public", name: "MyTable" }]);
        expect(resolveTables(toc, ['"we.ird".t'])).toEqual([{ schema: "we.ird", name: "t" }]);
        expect(resolveTables(toc, ["order*"])).toEqual([{ schema: "public", name: "orders" }, { schema: "public", name: "order_items" }]);
        expect(resolveTables(toc, ['"My Schema"."odd name"'])).toEqual([{ schema: "My Schema", name: "odd name" }]);
    });

    it.each([
        [["mytable"], /mytable: no such table in the backup \(the/],
        [["MyTable"], /MyTable: no such table in the backup \(unquoted names fold to lower case: quote it, "MyTable"\)/],
        [["nope"], /nope: no such table in the backup \(the backup has 7 table\(s\): ledger\.entries, public\."MyTable"/],
        [["entries"], /entries is in several schemas \(ledger\.entries, public\.entries\): name the schema/],
        [["ledger.nope*"], /ledger\.nope\*: no such table/],
        [["we.ird.t"], /expected \[schema\.\]table/],
        [['"open'], /unterminated quote/],
    ])("refuses %j with exit 2", (items, message) => {
        expect(() => resolveTables(toc, items)).toThrow(message);
        try {
            resolveTables(toc, items);
        } catch (e) {
            expect((e as { exitCode: number }).exitCode).toBe(2);
        }
    });

    it("splits --tables at commas outside quotes", () => {
        expect(splitTables('a, "B,c".d ,ledger.*')).toEqual(["a", '"B,c".d', "ledger.*"]);
    });
});

describe("the database's own entries", () => {
    const sql = [
        "\\restrict K1",
        "SET statement_timeout = 0;",
        "SELECT pg_catalog.set_config('search_path', '', false);",
        "CREATE DATABASE rich WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = icu LOCALE = 'C.UTF-8' ICU_LOCALE = 'de-DE';",
        "ALTER DATABASE rich OWNER TO exchange;",
        "\\unrestrict K1",
        "\\connect rich",
        "COMMENT ON DATABASE rich IS 'the rich''s ledger, DATABASE rich';",
        "ALTER DATABASE rich SET \"TimeZone\" TO 'Europe/Berlin';",
        "ALTER ROLE app_reader IN DATABASE rich SET search_path TO 'ledger', 'public';",
        "REVOKE CONNECT,TEMPORARY ON DATABASE rich FROM PUBLIC;",
        "GRANT CONNECT ON DATABASE rich TO app_reader;",
    ].join("\n");

    it("rewrites every statement for another name, properties after the content", () => {
        const d = parseDatabaseEntries(sql);
        expect(d.source).toBe("rich");
        expect(d.create("kx_new_1_rich")).toEqual([
            expect.stringMatching(/CREATE DATABASE "kx_new_1_rich" WITH TEMPLATE = template0 .*ICU_LOCALE = 'de-DE'$/),
            'ALTER DATABASE "kx_new_1_rich" OWNER TO exchange',
        ]);
        const props = d.properties("X");
        expect(props).toHaveLength(5);
        expect(props[0]).toBe(`COMMENT ON DATABASE "X" IS 'the rich''s ledger, DATABASE rich'`);
        expect(props[2]).toBe(`ALTER ROLE app_reader IN DATABASE "X" SET search_path TO 'ledger', 'public'`);
        expect(d.roles).toEqual(["app_reader", "exchange"]);
    });

    it.each([
        ["another statement", `${sql}\nDROP TABLE users;`, /unexpected statement \(DROP TABLE users/],
        ["a meta-command", `${sql}\n\\! id`, /meta-command \\! refused/],
        ["another database", `${sql}\nALTER DATABASE postgres SET x TO 1;`, /about another database/],
        ["another template", sql.replace("template0", "production"), /does not copy template0/],
    ])("refuses %s", (_what, text, message) => {
        expect(() => parseDatabaseEntries(text)).toThrow(message);
    });
});

describe("globals and roles", () => {
    const globals = [
        "\\restrict K",
        "SET default_transaction_read_only = off;",
        'CREATE ROLE "Report Users";',
        'ALTER ROLE "Report Users" WITH NOSUPERUSER INHERIT NOLOGIN CONNECTION LIMIT 3;',
        "CREATE ROLE exchange;",
        "ALTER ROLE exchange WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc' VALID UNTIL '2030-01-01 00:00:00+00';",
        "CREATE ROLE app_reader;",
        "ALTER ROLE exchange SET statement_timeout TO '30s';",
        "COMMENT ON ROLE exchange IS 'the app''s login';",
        "GRANT app_reader TO exchange GRANTED BY postgres;",
        'GRANT "Report Users" TO app_reader WITH ADMIN OPTION GRANTED BY postgres;',
        "CREATE TABLESPACE fast OWNER postgres LOCATION '/ssd';",
        "\\unrestrict K",
    ].join("\n");

    it("parses roles without their passwords, settings, comments, memberships", () => {
        const g = parseGlobals(globals);
        expect(g.roles.map((r) => r.name)).toEqual(["Report Users", "exchange", "app_reader"]);
        expect(g.roles[0].attributes).toEqual(["NOSUPERUSER", "INHERIT", "NOLOGIN", "CONNECTION LIMIT 3"]);
        expect(g.roles[1].attributes).toEqual(["LOGIN", "VALID UNTIL '2030-01-01 00:00:00+00'"]);
        expect(JSON.stringify(g)).not.toContain("SCRAM");
        expect(g.roles[1].settings).toEqual([`ALTER ROLE "exchange" SET statement_timeout TO '30s'`]);
        expect(g.roles[1].comment).toBe("the app's login");
        expect(g.memberships).toEqual([{ role: "app_reader", member: "exchange", admin: false }, { role: "Report Users", member: "app_reader", admin: true }]);
        expect(g.tablespaces).toEqual(["fast"]);
        expect(() => parseGlobals(`${globals}\n\\! id\n`)).toThrow(/meta-command \\! refused/);
    });

    it("creates the missing roles and their missing members, in the source's order; refuses unknown ones (exit 2)", () => {
        const g = { ...parseGlobals(globals), order: ["exchange", "app_reader", "Report Users"] };
        expect(rolesToCreate(["Report Users"], g, new Set())).toEqual(["exchange", "app_reader", "Report Users"]);
        expect(rolesToCreate(["app_reader"], g, new Set(["exchange"]))).toEqual(["app_reader"]);
        expect(() => rolesToCreate(["ghost"], g, new Set())).toThrow(/needs role\(s\) ghost that its globals do not define/);
    });

    it.each([
        ["ALTER TABLE ledger.entries OWNER TO exchange", ["exchange"]],
        ["GRANT SELECT ON TABLE ledger.entries TO app_reader, \"Report Users\"", ["app_reader", "Report Users"]],
        ["REVOKE ALL ON SCHEMA public FROM PUBLIC", []],
        ["CREATE POLICY p ON t AS PERMISSIVE FOR SELECT TO app_reader, \"Report Users\" USING ((owner = CURRENT_USER))", ["app_reader", "Report Users"]],
        ["ALTER DEFAULT PRIVILEGES FOR ROLE exchange IN SCHEMA s GRANT SELECT ON TABLES TO app_reader", ["exchange", "app_reader"]],
        ["CREATE USER MAPPING FOR etl SERVER remote OPTIONS (user 'x')", ["etl"]],
        ["ALTER ROLE app_reader IN DATABASE rich SET search_path TO 'ledger'", ["app_reader"]],
        ["GRANT app_reader TO exchange GRANTED BY postgres", ["exchange", "app_reader", "postgres"]],
        ["SET SESSION AUTHORIZATION DEFAULT", []],
        ["COMMENT ON TABLE t IS 'OWNER TO nobody'", []],
    ])("finds the roles %s names", (sql, roles) => {
        expect(roleReferences(splitStatements(sql)[0].tokens).sort()).toEqual([...roles].sort());
    });
});

describe("the plan", () => {
    const flags: RestoreFlags = { into: "crypto_exchange", tables: [], dataOnly: false, clean: false, force: false, safetyDump: true, terminateConnections: false, createRoles: false, keepOriginal: false, allowPartial: false };
    const backup = { key: "crypto_exchange/crypto_exchange-20260202-060000-abc123.dump", from: "local", scope: "full" as const, format: "custom" };
    const absent = { exists: false, objects: {}, sessions: 0 };

    it("builds beside the original, checks, swaps, then drops (or keeps) it", () => {
        const p = planRestore({ ...flags, force: true, terminateConnections: true }, { exists: true, objects: { relations: 3 }, sessions: 2 }, backup, "r1");
        expect(p.scratch).toBe("kx_new_r1_crypto_exchange");
        expect(p.old).toBe("kx_old_r1_crypto_exchange");
        expect(p.steps.join("\n")).toMatch(/safety dump[\s\S]*create database kx_new_r1_crypto_exchange[\s\S]*check kx_new[\s\S]*terminate[\s\S]*swap in one transaction[\s\S]*drop the original/);
        expect(planRestore({ ...flags, force: true, keepOriginal: true }, { exists: true, objects: { relations: 3 }, sessions: 0 }, backup, "r1").steps.at(-1)).toBe("keep the original as kx_old_r1_crypto_exchange");
        expect(planRestore(flags, absent, backup, "r1").steps.at(-1)).toBe("rename kx_new_r1_crypto_exchange to crypto_exchange");
    });

    it.each([
        ["a database holding only a large object, without --force", { ...flags }, { exists: true, objects: { "large objects": 1 }, sessions: 0 }, /holds 1 large object: add --force/],
        ["a materialized view and a function", { ...flags }, { exists: true, objects: { relations: 1, functions: 1 }, sessions: 0 }, /holds 1 relation, 1 function/],
        ["other sessions without --terminate-connections", { ...flags, force: true }, { exists: true, objects: {}, sessions: 2 }, /has 2 other session\(s\): stop the writers .* or add --terminate-connections/],
        ["--data-only without --tables", { ...flags, dataOnly: true }, absent, /add --tables/],
        ["--clean with --tables", { ...flags, clean: true, tables: ["t"] }, { exists: true, objects: {}, sessions: 0 }, /--clean applies to whole-database restores/],
        ["--tables into a missing database", { ...flags, tables: ["t"] }, absent, /does not exist: restore the whole database first/],
    ])("refuses %s (exit 2)", (_what, o, state, message) => {
        expect(() => planRestore(o, state, backup, "r1")).toThrow(message);
    });

    it("refuses a partial backup as a whole database unless asked", () => {
        expect(() => planRestore(flags, absent, { ...backup, scope: "schema-only" }, "r1")).toThrow(/is a schema-only backup: .*--allow-partial/);
        expect(planRestore({ ...flags, allowPartial: true }, absent, { ...backup, scope: "schema-only" }, "r1").mode).toBe("database");
    });

    it("names work databases so pg_dump writes them unquoted, within 63 bytes", () => {
        expect(workName("new", "abc123", "Crypto-Exchange")).toBe("kx_new_abc123_crypto_exchange");
        expect(workName("old", "abc123", "x".repeat(63))).toHaveLength(63);
    });

    it("names the backup a retry restores, and the safety dump", () => {
        expect(retryNote({ into: "ce", database: "crypto_exchange" }, backup.key, undefined, "ce/safety/ce-20260202-070000-def456.dump"))
            .toBe("ce was not changed; to retry with the same backup: --backup crypto_exchange-20260202-060000-abc123.dump; the safety dump taken first is ce/safety/ce-20260202-070000-def456.dump (--database ce --backup safety/ce-20260202-070000-def456.dump)");
    });
});

describe("verify", () => {
    it("rotates the test-restore through the targets: never tested first, then the oldest", () => {
        const kinds = ["local", "s3", "azure"];
        expect(rotationTarget(kinds, [], "ce")).toBe("local");
        expect(rotationTarget(kinds, [{ target: "local", finishedAt: "2026-01-01T00:00:00Z" }], "ce")).toBe("s3");
        const h = [
            { target: "local", finishedAt: "2026-01-03T00:00:00Z" },
            { target: "s3", finishedAt: "2026-01-01T00:00:00Z" },
            { target: "azure", finishedAt: "2026-01-02T00:00:00Z" },
        ];
        expect(rotationTarget(kinds, h, "ce")).toBe("s3");
        expect(rotationTarget(["local", "s3"], [...h, { target: "gone", finishedAt: "2020-01-01T00:00:00Z" }], "ce")).toBe("s3");
    });

    it("compares schemas line for line, the database's name and policy role order neutral", () => {
        const dump = "\\restrict a\n-- c\nCREATE DATABASE rich WITH TEMPLATE = template0;\nALTER DATABASE rich OWNER TO x;\nCREATE POLICY p ON t TO b, a USING (true);\n\\connect rich\n";
        const restored = "\\restrict b\nCREATE DATABASE kx_verify_1 WITH TEMPLATE = template0;\nALTER DATABASE kx_verify_1 OWNER TO x;\nCREATE POLICY p ON t TO a, b USING (true);\n";
        expect(normalizeSchema(dump, "rich")).toEqual(normalizeSchema(restored, "kx_verify_1"));
        expect(missingLines(["a", "a", "b"], ["a", "b"])).toEqual(["a"]);
    });

    it("reads sequence values from setval()", () => {
        expect(parseSequenceValues("SELECT pg_catalog.setval('public.\"Odd\"''s', 4242, true);\nSELECT pg_catalog.setval('s2', 1, false);"))
            .toEqual([{ name: `public."Odd"'s`, value: "4242", called: true }, { name: "s2", value: "1", called: false }]);
    });
});

describe("child processes and messages", () => {
    const settings = settingsFrom;

    it("gives children the one server's settings, never the job's secrets", () => {
        const saved = { ...process.env };
        Object.assign(process.env, { AWS_SECRET_ACCESS_KEY: "aws-secret", BACKUP_SIGNING_KEY: "sign", PGPASSWORD: "prod-pw", AZURE_STORAGE_CONNECTION_STRING: "conn" });
        try {
            const env = libpqEnv(settings({ PGHOST: "scratch", PGPASSWORD: "scratch-pw" }));
            expect(env).toMatchObject({ PGHOST: "scratch", PGPASSWORD: "scratch-pw", PATH: process.env.PATH });
            expect(Object.keys(env).filter((k) => !/^(PG|LANG|LC_|PATH|TZ)/.test(k))).toEqual([]);
            expect(JSON.stringify(libpqEnv())).not.toMatch(/aws-secret|sign|prod-pw|conn/);
        } finally {
            process.env = saved;
        }
    });

    it("says VERIFY_PGPASSWORD when the verify server refuses the password", () => {
        const s = settings({ PGHOST: "sidecar" });
        expect(describeConnectError({ code: "28P01" }, s, "postgres", VERIFY_VARS)).toMatch(/check VERIFY_PGPASSWORD$/);
        expect(describeConnectError({ code: "28P01" }, s, "postgres")).toMatch(/check PGPASSWORD/);
    });
});

describe("settled: reads started side by side (prepare, compareRestored)", () => {
    it("returns every value in argument order, whatever order they finish in", async () => {
        const later = (v: string, ms: number) => new Promise<string>((r) => setTimeout(() => r(v), ms));
        await expect(settled([later("a", 30), later("b", 1), "c"])).resolves.toEqual(["a", "b", "c"]);
    });

    it("throws only once everything started has finished, and the first failure in argument order", async () => {
        let slowDone = false;
        const slow = new Promise<string>((r) => setTimeout(() => {
            slowDone = true;
            r("slow");
        }, 50));
        const fails = (m: string, ms: number) => new Promise<string>((_, j) => setTimeout(() => j(new Error(m)), ms));
        const t0 = Date.now();
        await expect(settled([slow, fails("second", 1), fails("third", 0)])).rejects.toThrow("second");
        // Promise.all would have thrown after ~0 ms, with the slow one still running.
        expect(slowDone).toBe(true);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    });
});

describe("prepare's reads: side by side for an ordinary schema, one at a time for a large one", () => {
    const tracked = () => {
        let running = 0;
        let most = 0;
        const read = (v: string) => async () => {
            most = Math.max(most, ++running);
            await new Promise((r) => setTimeout(r, 10));
            running--;
            return v;
        };
        return { read, most: () => most };
    };

    it("runs four at once up to 10,000 TOC entries, one at a time beyond (each pg_restore holds the whole TOC)", async () => {
        expect(readsAtOnce(3_000)).toBe(4);
        expect(readsAtOnce(10_000)).toBe(4);
        expect(readsAtOnce(10_001)).toBe(1);
        expect(readsAtOnce(Infinity)).toBe(1);
        for (const [entries, most] of [[500, 4], [50_000, 1]] as const) {
            const t = tracked();
            await expect(runReads([t.read("a"), t.read("b"), t.read("c"), t.read("d")], readsAtOnce(entries))).resolves.toEqual(["a", "b", "c", "d"]);
            expect(t.most(), `${entries} entries`).toBe(most);
        }
    });

    it("one at a time stops at the first failure, starting nothing after it", async () => {
        const started: string[] = [];
        const read = (v: string, fail = false) => async () => {
            started.push(v);
            if (fail) {
                throw new Error(`${v} failed`);
            }
            return v;
        };
        await expect(runReads([read("a"), read("b", true), read("c")], 1)).rejects.toThrow("b failed");
        expect(started).toEqual(["a", "b"]);
    });
});

describe("fetchVerified: whose problem a failed download is", () => {
    const located = (stream: () => Readable) => ({
        target: { kind: "s3", get: async () => stream() },
        entry: { key: "db/db-20260101-000000-aaaaaa.dump" },
        manifest: { size: 10, sha256: "x".repeat(64), container: "pg_dump" },
    }) as unknown as Parameters<typeof fetchVerified>[0];

    it("a read that fails midway is the copy's (the store's), not the scratch space's", async () => {
        const broken = () => new Readable({
            read() {
                this.push(Buffer.from("abc"));
                this.destroy(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET", syscall: "read" }));
            },
        });
        const err = await fetchVerified(located(broken), mkdtempSync(path.join(tmpdir(), "kx-fetch-units-"))).catch((e: Error) => e);
        expect(err).toBeInstanceOf(Error);
        expect(err).not.toBeInstanceOf(ScratchSpaceError);
        expect((err as Error).message).toMatch(/cannot download db\/db-.*\.dump from s3: read ECONNRESET/);
    });

    it("a scratch space that does not exist is this side's, named as BACKUP_WORK_DIR", async () => {
        const err = await fetchVerified(located(() => Readable.from([Buffer.from("0123456789")])), path.join(tmpdir(), "kx-no-such-dir-here")).catch((e: Error) => e);
        expect(err).toBeInstanceOf(ScratchSpaceError);
        expect((err as Error).message).toMatch(/cannot make scratch space in .*kx-no-such-dir-here \(BACKUP_WORK_DIR\): ENOENT/);
    });
});
