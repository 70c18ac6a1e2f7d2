import { Writable } from "stream";
import { describe, expect, it } from "vitest";
import { jobCompression, pgDumpArgs, pgDumpHint, PhaseClock } from "../../jobs/src/backup";
import { describeConnectError, libpqEnv, parseQualified, qualified, sqlTable, tablePatternMatcher } from "../../jobs/src/db";
import { failureLine, Logger } from "../../jobs/src/log";
import { backupKey, databasePrefix, parseBackupName, timestamp } from "../../jobs/src/naming";
import { chooseTools, parseClientVersion } from "../../jobs/src/pgtools";
import { loadSettings, Settings } from "../../jobs/src/settings";

function settings(env: Record<string, string>): Settings {
    const r = loadSettings({ BACKUP_LOCAL_DIR: "/b", PGDATABASE: "kong", ...env });
    if (!r.ok) {
        throw new Error(r.errors.join("\n"));
    }
    return r.settings;
}

describe("naming", () => {
    it("gives two runs in the same second different names", () => {
        const at = new Date("2026-02-02T09:05:07Z");
        const names = new Set(Array.from({ length: 200 }, () => backupKey(undefined, "kong", at, "dump")));
        expect(names.size).toBe(200);
    });

    it("names dumps as the runbook does, in UTC", () => {
        const at = new Date("2026-02-02T09:05:07Z");
        expect(timestamp(at)).toBe("20260202-090507");
        expect(backupKey("krystalinex", "crypto_exchange", at, "dump", { runId: "a1b2c3" })).toBe("krystalinex/crypto_exchange/crypto_exchange-20260202-090507-a1b2c3.dump");
        expect(backupKey(undefined, "kong", at, "dump.tar", { runId: "0f0f0f" })).toBe("kong/kong-20260202-090507-0f0f0f.dump.tar");
        expect(backupKey(undefined, "kong", at, "dump", { runId: "0f0f0f", safety: true })).toBe("kong/safety/kong-20260202-090507-0f0f0f.dump");
        expect(databasePrefix("/krystalinex/", "kong")).toBe("krystalinex/kong/");
    });

    it("reads names back, and refuses what is not a backup", () => {
        expect(parseBackupName("x/crypto_exchange-20260202-090507.dump")).toEqual({ database: "crypto_exchange", takenAt: new Date("2026-02-02T09:05:07Z"), ext: "dump" });
        expect(parseBackupName("x/crypto_exchange-20260202-090507-a1b2c3.dump")).toEqual({ database: "crypto_exchange", takenAt: new Date("2026-02-02T09:05:07Z"), ext: "dump", runId: "a1b2c3" });
        expect(parseBackupName("kong-20261302-000000.dump")).toBeUndefined();
        expect(parseBackupName("kong-20260202-000000.zip")).toBeUndefined();
        expect(parseBackupName("kong.dump")).toBeUndefined();
    });
});

describe("pg_dump selection", () => {
    const tools = [
        { dir: "/usr/lib/postgresql/15/bin", major: 15, version: "15.18" },
        { dir: "/usr/lib/postgresql/17/bin", major: 17, version: "17.6" },
    ];
    it("picks the server's major, else the nearest newer one", () => {
        expect(chooseTools(tools, 15, "15.4").major).toBe(15);
        expect(chooseTools(tools, 16, "16.4").major).toBe(17);
        expect(chooseTools(tools, 13, "13.2").major).toBe(15);
    });
    it("says plainly when no client is new enough", () => {
        expect(() => chooseTools(tools.slice(0, 1), 16, "16.4")).toThrow(
            "pg_dump 15.18 cannot dump server 16.4: use an image with PostgreSQL 16 client tools (or set BACKUP_PG_BIN_DIR to their bin directory)",
        );
        expect(() => chooseTools([], 16, "16.4")).toThrow(/no pg_dump found/);
    });
    it("parses client versions", () => {
        expect(parseClientVersion("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")).toEqual({ major: 15, version: "15.18" });
        expect(parseClientVersion("pg_dump (PostgreSQL) 17beta1")).toEqual({ major: 17, version: "17" });
        expect(parseClientVersion("nonsense")).toBeUndefined();
    });
});

describe("pg_dump arguments", () => {
    const o = { schemaOnly: false, dataOnly: false, tables: [] as string[] };
    it("custom format by default, from the exported snapshot, never prompting", () => {
        expect(pgDumpArgs(settings({}), o, "00000003-1")).toEqual(["--no-password", "--dbname", "kong", "--snapshot", "00000003-1", "--format", "custom"]);
    });
    it("the runbook's variants", () => {
        expect(pgDumpArgs(settings({ BACKUP_FORMAT: "directory", BACKUP_JOBS: "4" }), { schemaOnly: true, dataOnly: false, tables: ["wallets", "orders"] }, undefined, { dir: "/tmp/d" }))
            .toEqual(["--no-password", "--dbname", "kong", "--format", "directory", "--jobs", "4", "--file", "/tmp/d", "--schema-only", "--table", "wallets", "--table", "orders", "--strict-names"]);
    });
    it("custom format: uncompressed from pg_dump 12-15 when the job compresses; pg_dump compresses otherwise", () => {
        const s = settings({});
        expect(jobCompression(s, 15)).toEqual({ level: -1, threads: 2 });
        expect(pgDumpArgs(s, o, undefined, { uncompressed: true })).toEqual(["--no-password", "--dbname", "kong", "--format", "custom", "--compress", "0"]);
        // Archive 1.15+ (pg_dump 16, 17): not restored in the tests here, so pg_dump keeps compressing.
        expect(jobCompression(s, 16)).toBeUndefined();
        expect(jobCompression(s, 17)).toBeUndefined();
        expect(jobCompression(settings({ BACKUP_COMPRESS_THREADS: "0" }), 15)).toBeUndefined();
        expect(jobCompression(settings({ BACKUP_COMPRESS_THREADS: "3" }), 15)).toEqual({ level: -1, threads: 3 });
        expect(jobCompression(settings({ BACKUP_FORMAT: "plain" }), 15)).toBeUndefined();
        expect(jobCompression(settings({ BACKUP_FORMAT: "directory", BACKUP_JOBS: "2" }), 15)).toBeUndefined();
        // More would queue behind file I/O in libuv's pool of 4.
        expect(() => settings({ BACKUP_COMPRESS_THREADS: "4" })).toThrow(/BACKUP_COMPRESS_THREADS/);
        expect(() => settings({ BACKUP_COMPRESS_THREADS: "-1" })).toThrow(/BACKUP_COMPRESS_THREADS/);
    });
    it("passes credentials by environment only", () => {
        const s = settings({ PGPASSWORD: "pw", PGUSER: "kong", PGHOST: "kong-database" });
        expect(libpqEnv(s)).toMatchObject({ PGPASSWORD: "pw", PGUSER: "kong", PGHOST: "kong-database", PGDATABASE: "kong" });
        expect(pgDumpArgs(s, o, undefined).join(" ")).not.toContain("pw");
    });
    it("matches table patterns as pg_dump -t does", () => {
        const m = tablePatternMatcher(["wallets", "ledger.*", "ord?rs"]);
        expect(m({ schema: "public", name: "wallets" })).toBe(true);
        expect(m({ schema: "ledger", name: "anything" })).toBe(true);
        expect(m({ schema: "public", name: "orders" })).toBe(true);
        expect(m({ schema: "public", name: "users" })).toBe(false);
    });
    it("hints what to do", () => {
        expect(pgDumpHint("pg_dump: error: connection to server at \"x\" failed: server closed the connection unexpectedly")).toMatch(/server went away/);
        expect(pgDumpHint("FATAL: password authentication failed for user")).toMatch(/PGPASSWORD/);
        expect(pgDumpHint("pg_dump: error: aborting because of server version mismatch")).toMatch(/major version/);
    });
    it("describes connection errors without the password", () => {
        const s = settings({ PGPASSWORD: "hunter2", PGUSER: "kong" });
        for (const code of ["ECONNREFUSED", "ENOTFOUND", "28P01", "3D000", "XX000"]) {
            expect(describeConnectError({ code, message: "m" }, s, "kong")).not.toContain("hunter2");
        }
    });
});

describe("child process output and SQL names", () => {
    it("reports the last error-like line, else the last line", () => {
        expect(failureLine("pg_restore: connecting\npg_restore: error: could not open input file\nsummary: 1 warning\n")).toBe("pg_restore: error: could not open input file");
        expect(failureLine("  \nonly this\n\n")).toBe("only this");
        expect(failureLine("")).toBe("");
        // A parallel run: the worker's error, not the leader's line after it.
        expect(failureLine("pg_restore: error: COPY failed for table \"zz\": ERROR:  boom\nCONTEXT:  PL/pgSQL function chk(integer)\npg_restore: error: a worker process died unexpectedly\n"))
            .toBe("pg_restore: error: COPY failed for table \"zz\": ERROR:  boom");
        expect(failureLine("pg_dump: error: a worker process died unexpectedly\n")).toBe("pg_dump: error: a worker process died unexpectedly");
        // The COPY's context line quotes the row (here a table named failed_jobs holding "connection
        // error"), DETAIL may too: neither is ever the line, whatever words they hold.
        const copy = "pg_restore: error: COPY failed for table \"failed_jobs\": ERROR:  boom: chk refused 1\n" +
            "CONTEXT:  PL/pgSQL function chk(integer) line 1 at RAISE\nCOPY failed_jobs, line 1: \"1\tjob x: connection error\"\n" +
            "pg_restore: detail: Failing row contains (1, could not connect).\nCommand was: COPY public.failed_jobs (id, payload) FROM stdin;\n";
        expect(failureLine(copy)).toBe("pg_restore: error: COPY failed for table \"failed_jobs\": ERROR:  boom: chk refused 1");
        expect(failureLine(`${copy}pg_restore: error: a worker process died unexpectedly\n`)).toBe("pg_restore: error: COPY failed for table \"failed_jobs\": ERROR:  boom: chk refused 1");
        // Without a line that says it is an error, the last error-like one, as before.
        expect(failureLine("tar: dump/3.dat: Cannot open: Permission denied\nsomething failed here\n")).toBe("something failed here");
    });
    it("quotes tables and reads manifest keys back", () => {
        expect(sqlTable({ schema: "ledger", name: 'odd"name' })).toBe('"ledger"."odd""name"');
        const t = { schema: "public", name: "trades.v2" };
        expect(parseQualified(qualified(t))).toEqual(t);
    });
});

describe("logs", () => {
    function capture(format: "json" | "text") {
        let text = "";
        const out = new Writable({ write(c, _e, cb) { text += c; cb(); } });
        return { log: new Logger(format, out, false), text: () => text };
    }
    it("redacts every secret and credentials in URLs and connection strings", () => {
        const { log, text } = capture("json");
        log.addSecrets(["s3cr3t-pw"]);
        log.error("failed with s3cr3t-pw for postgres://kong:other-pw@db/kong; AccountKey=abc==;BlobEndpoint=x");
        expect(text()).not.toContain("s3cr3t-pw");
        expect(text()).not.toContain("other-pw");
        expect(text()).not.toContain("abc==");
        expect(JSON.parse(text()).level).toBe("error");
    });
    it("writes one JSON object per line in a pod, text on a terminal", () => {
        const j = capture("json");
        j.log.info("hello", { database: "kong" });
        expect(JSON.parse(j.text())).toMatchObject({ level: "info", msg: "hello", database: "kong" });
        const t = capture("text");
        t.log.warn("careful", { target: "s3" });
        expect(t.text()).toBe("warn: careful  target=s3\n");
    });
});

describe("PhaseClock: where a backup's time went", () => {
    it("gives each phase the time since the previous mark, in order; a phase marked twice keeps its first end", () => {
        let now = 1000;
        const clock = new PhaseClock(() => now);
        now = 1120.4;
        clock.mark("prepare");
        now = 19_000;
        clock.mark("dump");
        now = 19_500;
        clock.mark("dump");
        now = 19_800;
        clock.mark("upload");
        expect(clock.durations()).toEqual({ prepare: 120, dump: 17_880, upload: 800 });
        expect(Object.keys(clock.durations())).toEqual(["prepare", "dump", "upload"]);
    });
});
