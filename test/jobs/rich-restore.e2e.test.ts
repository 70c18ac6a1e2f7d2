/**
 * The whole database, not only its rows: a database with roles, ICU collation, settings, a
 * comment, an ACL revoking PUBLIC, RLS policies naming roles, grants, default privileges, a user
 * mapping, large objects and sequences, backed up, verified on a scratch server that has none of
 * its roles, and restored into a second, bare cluster ("full cluster loss").
 */
import { execFileSync } from "child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_BIN, PgCluster, startPostgres } from "../../jobs/dev/services";
import { DATABASE_PROPERTIES, RICH_DATABASE, RICH_ROLES } from "../helpers/fixtures";
import { logLines, runCli } from "../helpers/cli";

let source: PgCluster;
let verifier: PgCluster;
let bare: PgCluster;
let work: string;

beforeAll(async () => {
    [source, verifier, bare] = await Promise.all([startPostgres(), startPostgres(), startPostgres()]);
    work = mkdtempSync(path.join(os.tmpdir(), "kx-rich-"));
    for (const statement of RICH_ROLES.split(";\n").map((x) => x.trim()).filter(Boolean)) {
        source.psql("postgres", statement);
    }
    source.psql("rich", RICH_DATABASE);
}, 120_000);

afterAll(() => {
    source?.remove();
    verifier?.remove();
    bare?.remove();
    rmSync(work, { recursive: true, force: true });
});

function env(server: PgCluster, extra: Record<string, string> = {}): Record<string, string> {
    return {
        ...server.env("rich"),
        BACKUP_LOCAL_DIR: path.join(work, "backups"),
        VERIFY_PGHOST: "127.0.0.1",
        VERIFY_PGPORT: String(verifier.port),
        VERIFY_PGUSER: "postgres",
        VERIFY_PGPASSWORD: verifier.password,
        ...extra,
    };
}

/** pg_dump --create --schema-only, its per-run \restrict key aside. */
function schema(cluster: PgCluster): string {
    return execFileSync(path.join(PG_BIN, "pg_dump"), ["--create", "--schema-only", "-d", "rich"], { env: { PATH: process.env.PATH ?? "", ...cluster.env("rich") } })
        .toString()
        .replace(/^\\(un)?restrict .*$/gm, "");
}

/** Every table's rows, every large object and sequence, as one comparable text. */
function data(cluster: PgCluster): string {
    const tables = cluster.psql("rich", "SELECT string_agg(format('%I.%I', n.nspname, c.relname), ' ' ORDER BY n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')").split(" ");
    const rows = tables.map((t) => `${t} ${cluster.psql("rich", `SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM ${t} x`)}`);
    const los = cluster.psql("rich", "SELECT string_agg(oid || ':' || md5(lo_get(oid)) || ':' || pg_get_userbyid(lomowner) || ':' || coalesce(lomacl::text, ''), ' ' ORDER BY oid) FROM pg_largeobject_metadata");
    const seqs = cluster.psql("rich", "SELECT string_agg(schemaname || '.' || sequencename || '=' || coalesce(last_value::text, 'null'), ' ' ORDER BY schemaname, sequencename) FROM pg_sequences");
    const sorted = cluster.psql("rich", "SELECT string_agg(name, ',' ORDER BY name) FROM (SELECT name FROM public.accounts ORDER BY id LIMIT 12) a");
    return [...rows, los, seqs, sorted].join("\n");
}

const roles = (cluster: PgCluster) => cluster.psql("postgres", "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres'");

describe("a rich database, whole", () => {
    let backupName: string;

    beforeAll(async () => {
        const r = await runCli(["backup", "--no-prune"], env(source));
        expect(r.code, r.stderr).toBe(0);
        const folder = path.join(work, "backups", "rich");
        backupName = readdirSync(folder).find((f) => f.endsWith(".dump"))!;
        const manifest = JSON.parse(readFileSync(path.join(folder, `${backupName}.manifest.json`), "utf8"));
        // The globals travel with the backup, covered by its manifest, without passwords.
        expect(manifest.globals).toMatchObject({ key: `rich/${backupName}.globals.sql`, roles: expect.arrayContaining(["exchange", "app_reader", "Report Users", "auditor"]) });
        const globals = readFileSync(path.join(folder, `${backupName}.globals.sql`), "utf8");
        expect(globals).toContain("CREATE ROLE exchange;");
        expect(globals).not.toMatch(/PASSWORD|not-in-any-backup|SCRAM/);
    }, 60_000);

    it("verifies on a scratch server that has none of its roles, and leaves that server as it was", async () => {
        expect(roles(verifier)).toBe("");
        const r = await runCli(["verify", "--json"], env(source));
        expect(r.code, r.stderr).toBe(0);
        const report = JSON.parse(r.stdout);
        expect(report.steps.find((s: { step: string }) => s.step === "roles").detail).toBe("created 5 role(s) from the backup's globals: exchange, app_reader, Report Users, auditor, lo_keeper");
        expect(report.checks.ran).toEqual(["counts", "properties", "schema", "sequences", "large-objects", "integrity"]);
        expect(report.steps.find((s: { step: string }) => s.step === "large-objects").detail).toBe("2 large object(s), the dump's OIDs");
        expect(roles(verifier)).toBe("");
        expect(verifier.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'kx%'")).toBe("0");
    });

    it("refuses to restore onto a server without its roles, naming them, touching nothing", async () => {
        const r = await runCli(["restore", "--into", "rich"], env(bare));
        expect(r.code).toBe(2);
        expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toBe(
            "the server lacks role(s) Report Users, app_reader, exchange, lo_keeper that the backup needs: add --create-roles to create them from the backup's globals " +
                `(without passwords), or create them yourself. rich was not changed; to retry with the same backup: --backup ${backupName}`,
        );
        expect(roles(bare)).toBe("");
        expect(bare.psql("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")).toBe("postgres,template0,template1");
    });

    it("restores onto a bare cluster with --create-roles: schema, data and database properties identical", async () => {
        const r = await runCli(["restore", "--into", "rich", "--create-roles"], env(bare));
        expect(r.code, r.stderr).toBe(0);
        expect(schema(bare)).toBe(schema(source));
        expect(data(bare)).toBe(data(source));
        expect(bare.psql("rich", DATABASE_PROPERTIES)).toBe(source.psql("rich", DATABASE_PROPERTIES));
        expect(bare.psql("rich", DATABASE_PROPERTIES)).toBe(
            "exchange | UTF8 | i | C.UTF-8 | C.UTF-8 | de-DE | -1 | {exchange=CTc/exchange,app_reader=c/exchange} | ledger of the exchange | app_reader=search_path=ledger, public; *=TimeZone=Europe/Berlin,work_mem=8MB",
        );
        // The member of a group the dump names is created too (it reaches the data through it), without a password.
        expect(roles(bare)).toBe(roles(source));
        expect(bare.psql("postgres", "SELECT string_agg(r.rolname || '>' || m.rolname, ',') FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member WHERE r.rolname !~ '^pg_'")).toBe("app_reader>auditor");
        expect(bare.psql("postgres", "SELECT count(*) FROM pg_authid WHERE rolpassword IS NOT NULL")).toBe("1");
        expect(bare.psql("postgres", "SELECT string_agg(rolname || ':' || rolconnlimit || ':' || coalesce(array_to_string(s.setconfig, ','), ''), ' ' ORDER BY rolname) FROM pg_roles r LEFT JOIN pg_db_role_setting s ON s.setrole = r.oid AND s.setdatabase = 0 WHERE rolname IN ('auditor', 'exchange')")).toBe("auditor:2: exchange:-1:statement_timeout=30s");
    });

    it("restores a table owned by a role whose name holds a space, by name", async () => {
        bare.psql("rich", "UPDATE reporting.weekly SET total = 0");
        const r = await runCli(["restore", "--into", "rich", "--tables", "reporting.weekly", "--data-only", "--force", "--no-safety-dump"], env(bare));
        expect(r.code, r.stderr).toBe(0);
        expect(bare.psql("rich", "SELECT string_agg(total::text, ',' ORDER BY week) FROM reporting.weekly")).toBe("70,140,210,280,350");
    });

    it("replaces it again in place: the swap keeps every property", async () => {
        bare.psql("rich", "DELETE FROM ledger.entries WHERE id > 10");
        const r = await runCli(["restore", "--into", "rich", "--force", "--terminate-connections"], env(bare));
        expect(r.code, r.stderr).toBe(0);
        expect(schema(bare)).toBe(schema(source));
        expect(data(bare)).toBe(data(source));
        expect(bare.psql("rich", DATABASE_PROPERTIES)).toBe(source.psql("rich", DATABASE_PROPERTIES));
        expect(bare.psql("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")).toBe("postgres,rich,template0,template1");
    });
});
