/**
 * A hostile review of the job, end to end: the bundled CLI (--unhandled-rejections=strict)
 * against a real PostgreSQL 15 and s3rver. Each test is a way found to lose or misrestore data,
 * leak a secret or fail on the real service, and fails without its fix.
 */
import { execFileSync, spawn } from "child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, PG_BIN, PgCluster, S3Emulator, startPostgres, startS3, verifyServerEnv } from "../../jobs/dev/services";
import { CliResult, logLines, runCli } from "../helpers/cli";
import { webhookSink } from "../helpers/proxy";

let pg: PgCluster;
let s3: S3Emulator;
let work: string;

beforeAll(async () => {
    [pg, s3] = await Promise.all([startPostgres(), startS3()]);
    work = mkdtempSync(path.join(os.tmpdir(), "kx-hostile-"));
    chmodSync(work, 0o755);
}, 240_000);

afterAll(async () => {
    pg?.remove();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
});

/** A SQL identifier, quoted. */
const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

function dir(name: string): string {
    const d = path.join(work, name);
    mkdirSync(d, { recursive: true });
    return d;
}

/** The cluster as the job's source, a local target, the same cluster as verify's scratch server. */
function env(database: string, local: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
        ...pg.env(database),
        BACKUP_LOCAL_DIR: local,
        ...verifyServerEnv(pg),
        ...extra,
    };
}

/** psql's -d for a database name (one holding "=" would be read as a connection string). */
const conn = (name: string) => (name.includes("=") ? `dbname='${name}'` : name);

function createDb(name: string, sql: string): void {
    pg.psql("postgres", `CREATE DATABASE ${q(name)}`);
    pg.psql(conn(name), sql);
}

function databases(): string[] {
    return pg.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1").split("\n");
}

/** Files under a local target, relative, sorted. */
function files(root: string): string[] {
    const out: string[] = [];
    const walk = (rel: string) => {
        for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
            if (e.isDirectory()) {
                walk(path.join(rel, e.name));
            } else {
                out.push(path.join(rel, e.name));
            }
        }
    };
    walk("");
    return out.sort();
}

/** An HTTP endpoint recording every request's headers (ntfy's Title is a header). */
async function headerSink(): Promise<{ url: string; requests: http.IncomingHttpHeaders[]; close(): Promise<void> }> {
    const requests: http.IncomingHttpHeaders[] = [];
    const server = http.createServer((req, res) => {
        req.resume();
        req.on("end", () => {
            requests.push(req.headers);
            res.end();
        });
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    return { url: `http://127.0.0.1:${port}/topic`, requests, close: () => new Promise((r) => server.close(() => r())) };
}

/** Runs the CLI and sends it SIGTERM once `ready()` holds (polled); resolves with how it ended. */
async function stopWhen(args: string[], e: Record<string, string>, ready: () => boolean): Promise<CliResult> {
    let pid = 0;
    let ended = false;
    const run = runCli(args, e, { onStart: (p) => (pid = p) }).finally(() => (ended = true));
    const deadline = Date.now() + 60_000;
    while (!ready()) {
        if (ended || Date.now() > deadline) {
            throw new Error(`kx-backup ${args.join(" ")} ${ended ? "ended" : "ran 60 s"} before the moment to stop it:\n${(await run).stderr}`);
        }
        await new Promise((r) => setTimeout(r, 20));
    }
    process.kill(pid, "SIGTERM");
    return run;
}

describe("database names pg_dump has to quote", () => {
    // pg_dump writes `\encoding SQL_ASCII` + `\connect -reuse-previous=on "dbname='…'"` for any name
    // outside [A-Za-z0-9_.]: refused as a meta-command, no such database could be verified or restored.
    // A name holding "=" was read by libpq as a connection string (here: another host).
    const NAMES = ["kong-db", "my db", "日本", "x=y host=nowhere.invalid"];

    it.each(NAMES)("%s: backup, verify and a restore over itself all succeed", async (name) => {
        createDb(name, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g;");
        const ntfy = await headerSink();
        try {
            const e = env(name, dir(`names-${Buffer.from(name).toString("hex")}`), { BACKUP_NTFY_URL: ntfy.url, BACKUP_NOTIFY_ON_SUCCESS: "true" });
            const backup = await runCli(["backup"], e);
            expect(backup.code, backup.stderr).toBe(0);
            const verify = await runCli(["verify"], e);
            expect(verify.code, verify.stderr).toBe(0);
            expect(logLines(verify.stderr).filter((l) => l.event === "verify.step" && l.step === "schema").map((l) => l.ok)).toEqual([true]);
            pg.psql(conn(name), "INSERT INTO t VALUES (999, 'after the backup')");
            const restore = await runCli(["restore", "--into", name, "--force", "--terminate-connections"], e);
            expect(restore.code, restore.stderr).toBe(0);
            expect(pg.psql(conn(name), "SELECT count(*) FROM t")).toBe("50");
            // Every run notified, whatever the name: a raw non-Latin-1 Title made fetch throw.
            expect(ntfy.requests.map((h) => String(h.title)).every((t) => /^[\x20-\x7e]+$/.test(t))).toBe(true);
            expect(ntfy.requests.length).toBeGreaterThanOrEqual(3);
            const titles = ntfy.requests.map((h) => String(h.title)).map((t) => (t.startsWith("=?UTF-8?B?") ? Buffer.from(t.slice(10, -2), "base64").toString("utf8") : t));
            expect(titles).toContain(`KrystalineX restore ok: ${name}`);
        } finally {
            await ntfy.close();
        }
    }, 120_000);
});

describe("SIGTERM never lets a restore replace the original", () => {
    it("a stop during a plain backup's load leaves the original as it was and drops what was built", async () => {
        // Each row's CHECK sleeps: the load takes seconds, a window to stop it in.
        createDb("slowload", `CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(0.02) IS NOT NULL';
            CREATE TABLE t (id int CHECK (slow(id)), v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 250) g;`);
        const e = env("slowload", dir("slowload"), { BACKUP_FORMAT: "plain" });
        expect((await runCli(["backup"], e)).code).toBe(0);
        pg.psql("slowload", "INSERT INTO t VALUES (-1, 'written after the backup: must survive')");
        const { code, stderr } = await stopWhen(["restore", "--into", "slowload", "--force", "--no-safety-dump"], e,
            () => pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%COPY public.t %' AND pid <> pg_backend_pid()") === "1");
        expect(code, stderr).toBe(143);
        expect(pg.psql("slowload", "SELECT count(*) FROM t WHERE id = -1")).toBe("1");
        expect(databases().filter((d) => d.includes("slowload"))).toEqual(["slowload"]);
        expect(logLines(stderr).some((l) => l.event === "restore.swap")).toBe(false);
        expect(logLines(stderr).at(-1)?.msg).toMatch(/restore stopped by SIGTERM before it finished: nothing was committed/);
    }, 120_000);

    it("a stop between the dump and its manifest commits nothing, the globals included", async () => {
        createDb("stopglobals", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);");
        // A pg_dumpall that cannot be stopped for 2 s: the stop arrives while the globals are made.
        const bin = dir("slow-bin");
        const mark = path.join(work, "pg_dumpall.started");
        for (const tool of ["pg_dump", "pg_restore", "psql"]) {
            if (!existsSync(path.join(bin, tool))) {
                symlinkSync(path.join(PG_BIN, tool), path.join(bin, tool));
            }
        }
        writeFileSync(path.join(bin, "pg_dumpall"), `#!/bin/sh\ntrap '' TERM\ntouch ${mark}\nsleep 2\nexec ${path.join(PG_BIN, "pg_dumpall")} "$@"\n`, { mode: 0o755 });
        const local = dir("stopglobals");
        const { code, stderr } = await stopWhen(["backup"], env("stopglobals", local, { BACKUP_PG_BIN_DIR: bin }), () => existsSync(mark));
        expect(code, stderr).toBe(143);
        expect(logLines(stderr).at(-1)?.msg).toMatch(/backup stopped by SIGTERM before it finished: nothing was committed/);
        expect(files(local)).toEqual([]);
    }, 120_000);
});

describe("the original a restore replaced is dropped only when nothing was written to it meanwhile", () => {
    it("writers ended by --terminate-connections wrote what neither the backup nor the safety dump holds: the original is kept", async () => {
        createDb("busy", `CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(0.01) IS NOT NULL';
            CREATE TABLE t (id int CHECK (slow(id)), v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 200) g;`);
        const e = env("busy", dir("busy"));
        expect((await runCli(["backup"], e)).code).toBe(0);
        // An application nobody stopped: a row every 50 ms until the swap ends its session.
        const writer = spawn(path.join(PG_BIN, "psql"), ["-X", "-q", "-d", "busy", "-c",
            "DO $$ BEGIN FOR i IN 1..400 LOOP INSERT INTO t VALUES (-i, 'live'); COMMIT; PERFORM pg_sleep(0.05); END LOOP; END $$"], {
            env: { PATH: process.env.PATH ?? "", ...pg.env("busy") }, stdio: "ignore",
        });
        const writerDone = new Promise((r) => writer.on("close", r));
        await new Promise((r) => setTimeout(r, 500));
        const r = await runCli(["restore", "--into", "busy", "--force", "--terminate-connections"], e);
        await writerDone;
        expect(r.code, r.stderr).toBe(0);
        const kept = logLines(r.stderr).find((l) => l.event === "restore.keep-original");
        expect(kept?.msg).toMatch(/the original is kept as kx_old_[0-9a-f]{6}_busy: \d+ row change\(s\) were made in it while the restore ran/);
        expect(logLines(r.stderr).some((l) => l.event === "restore.drop-original")).toBe(false);
        expect(Number(pg.psql(kept!.old, "SELECT count(*) FROM t WHERE v = 'live'"))).toBeGreaterThan(0);
        expect(pg.psql("busy", "SELECT count(*) FROM t")).toBe("200");
        // Nobody writes now: the next restore drops what it replaces.
        const again = await runCli(["restore", "--into", "busy", "--force", "--no-safety-dump"], e);
        expect(again.code, again.stderr).toBe(0);
        expect(logLines(again.stderr).some((l) => l.event === "restore.drop-original")).toBe(true);
        pg.psql("postgres", `DROP DATABASE ${q(kept!.old)}`);
    }, 120_000);
});

describe("a backup dated in the future (a node's clock ran ahead once)", () => {
    it("is never `latest`, and status names the clock instead of reporting the RPO met", async () => {
        createDb("clock", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);");
        const e = env("clock", dir("clock"));
        const ahead = await runCli(["backup", "--no-prune"], e, { wrap: ["faketime", "-f", "+400d"] });
        expect(ahead.code, ahead.stderr).toBe(0);
        pg.psql("clock", "INSERT INTO t SELECT generate_series(101, 150)");
        const now = await runCli(["backup", "--no-prune"], e);
        expect(now.code, now.stderr).toBe(0);
        const newest = logLines(now.stderr).find((l) => l.event === "backup.done")!.key as string;
        const plan = await runCli(["restore", "--into", "clock_copy", "--plan"], e);
        expect(plan.code, plan.stderr).toBe(0);
        expect(plan.stdout.split("\n")[0]).toBe(`1. check the sha256 of ${newest} on local`);
        const status = await runCli(["status", "--json"], e);
        expect(status.code).toBe(1);
        const row = JSON.parse(status.stdout)[0];
        expect(row.newestFull.key).toBe(newest);
        expect(row.problems.join("\n")).toMatch(/clock: clock\/clock-\d{8}-\d{6}-[0-9a-f]{6}\.dump is dated \d+ h ahead of this clock/);
    }, 120_000);
});

describe("an archive named like a database (archive --name <db>)", () => {
    it("is never that database's `latest`", async () => {
        createDb("samename", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);");
        const e = env("samename", dir("samename"));
        const backup = await runCli(["backup"], e);
        expect(backup.code, backup.stderr).toBe(0);
        const dumpKey = logLines(backup.stderr).find((l) => l.event === "backup.done")!.key as string;
        const config = dir("samename-config");
        writeFileSync(path.join(config, "app.conf"), "x=1\n");
        expect((await runCli(["archive", "--name", "samename", "--path", config], e)).code).toBe(0);
        const plan = await runCli(["restore", "--into", "samename_copy", "--plan"], e);
        expect(plan.code, plan.stderr).toBe(0);
        expect(plan.stdout.split("\n")[0]).toBe(`1. check the sha256 of ${dumpKey} on local`);
        const verify = await runCli(["verify"], e);
        expect(verify.code, verify.stderr).toBe(0);
    }, 120_000);
});

describe("the anomaly guard compares with every target's history", () => {
    it("a fresh first target (a new PVC) does not switch it off: the drop is flagged from S3's baseline", async () => {
        createDb("anomaly", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 20000);");
        const s3env = { ...s3.env(), BACKUP_S3_PREFIX: "anomaly" };
        expect((await runCli(["backup", "--no-prune"], env("anomaly", dir("anomaly-old-pvc"), s3env))).code).toBe(0);
        pg.psql("anomaly", "DELETE FROM t WHERE id > 1000");
        const r = await runCli(["backup", "--no-prune"], env("anomaly", dir("anomaly-new-pvc"), s3env));
        expect(r.code, r.stderr).toBe(0);
        const flagged = logLines(r.stderr).find((l) => l.event === "backup.anomaly");
        expect(flagged?.reasons.join("; ")).toMatch(/public\.t: 20000 → 1000 rows/);
    }, 120_000);

    it("read while pg_dump runs, it still ends before the run's failure line: nothing is logged after it", async () => {
        createDb("late_baseline", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000);");
        // An S3 that refuses writes at once and answers a listing only after 2 s (a bucket of many
        // backups, a slow link): the run fails at its in-progress marker long before the baseline is read.
        const slow = http.createServer((req, res) => {
            req.resume();
            const refuse = () => {
                res.writeHead(403, { "content-type": "application/xml" });
                res.end("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
            };
            if (req.method === "GET" && /[?&]list-type=2/.test(req.url ?? "")) {
                setTimeout(refuse, 2_000);
            } else {
                refuse();
            }
        });
        const port = await freePort();
        await new Promise<void>((r) => slow.listen(port, "127.0.0.1", r));
        try {
            const r = await runCli(["backup", "--no-prune"], env("late_baseline", dir("late-baseline"), { ...s3.env(), BACKUP_S3_ENDPOINT: `http://127.0.0.1:${port}` }));
            expect(r.code, r.stderr).toBe(1);
            const lines = logLines(r.stderr);
            expect(lines.at(-1)?.event, r.stderr).toBe("backup.failed");
            expect(lines.at(-1)?.msg).toMatch(/in-progress marker/);
        } finally {
            slow.closeAllConnections();
            await new Promise((r) => slow.close(r));
        }
    }, 120_000);
});

describe("secrets in unusual places", () => {
    it("a SAS URL pasted as BACKUP_AZURE_ACCOUNT_URL reaches neither stderr nor the notification", async () => {
        const hook = await webhookSink();
        try {
            const r = await runCli(["backup"], {
                PGDATABASE: "kong",
                BACKUP_AZURE_CONTAINER: "backups",
                BACKUP_AZURE_ACCOUNT_URL: "https://acct.blob.core.windows.net/?sv=2022-11-02&ss=b&sp=rwdlac&se=2027-01-01&sig=TOPSECRETSIG%2Babc",
                BACKUP_WEBHOOK_URL: hook.url,
            });
            expect(r.code).toBe(2);
            expect(r.stderr).toMatch(/BACKUP_AZURE_ACCOUNT_URL is not allowed/);
            expect(hook.events).toHaveLength(1);
            expect(`${r.stderr}${r.stdout}${JSON.stringify(hook.events)}`).not.toContain("TOPSECRETSIG");
        } finally {
            await hook.close();
        }
    });
});

describe("a forged verify record", () => {
    it("with BACKUP_SIGNING_KEY, a record copied beside another backup neither marks it verified nor moves `status`", async () => {
        createDb("forged", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);");
        const local = dir("forged");
        const e = env("forged", local, { BACKUP_SIGNING_KEY: "k".repeat(32) });
        const first = await runCli(["backup", "--no-prune"], e);
        expect(first.code).toBe(0);
        const verified = logLines(first.stderr).find((l) => l.event === "backup.done")!.key as string;
        expect((await runCli(["verify"], e)).code).toBe(0);
        const second = await runCli(["backup", "--no-prune"], e);
        const never = logLines(second.stderr).find((l) => l.event === "backup.done")!.key as string;
        // Someone with write access puts the passing record beside the backup that never ran a restore test.
        const record = JSON.parse(readFileSync(path.join(local, `${verified}.verify.json`), "utf8"));
        const sha256 = JSON.parse(readFileSync(path.join(local, `${never}.manifest.json`), "utf8")).sha256;
        writeFileSync(path.join(local, `${never}.verify.json`), JSON.stringify({ ...record, key: never, sha256, finishedAt: new Date().toISOString() }));
        const list = await runCli(["list", "--json"], e);
        const rows = JSON.parse(list.stdout) as { name: string; status: string; problem?: string }[];
        expect(rows.find((x) => never.endsWith(x.name))?.status).toBe("complete");
        expect(rows.find((x) => never.endsWith(x.name))?.problem).toMatch(/not verified: its verify record is signed with another key or altered/);
        expect(rows.find((x) => verified.endsWith(x.name))?.status).toBe("verified");
        const status = await runCli(["status", "--json"], e);
        expect(JSON.parse(status.stdout)[0].newestVerified.key).toBe(verified);
    }, 120_000);
});

describe("adopt of a file that is not what its name says", () => {
    it("refuses a dump of another database named as this one's: restoring it would replace this database with the other", async () => {
        createDb("adopt_a", "CREATE TABLE only_in_a (id int);");
        createDb("adopt_b", "CREATE TABLE only_in_b (id int);");
        const local = dir("adopt");
        mkdirSync(path.join(local, "adopt_b"), { recursive: true });
        const file = path.join(local, "adopt_b", "adopt_b-20261120-030000.dump");
        execFileSync(path.join(PG_BIN, "pg_dump"), ["-Fc", "-f", file, "-d", "adopt_a"], { env: { PATH: process.env.PATH ?? "", ...pg.env("adopt_a") } });
        const r = await runCli(["adopt"], env("adopt_b", local));
        expect(r.code).toBe(1);
        expect(logLines(r.stderr).at(-1)?.msg).toMatch(/it is a dump of database "adopt_a", not of adopt_b: move it under adopt_a\//);
        expect(files(local)).toEqual(["adopt_b/adopt_b-20261120-030000.dump"]);
    }, 60_000);
});

describe("restore --tables with names only a quote tells apart", () => {
    it('a."b.c" is checked against its own count, not "a.b".c\'s', async () => {
        createDb("dots", `CREATE SCHEMA "a.b"; CREATE SCHEMA a; CREATE TABLE "a.b".c (id int); CREATE TABLE a."b.c" (id int);
            INSERT INTO "a.b".c SELECT generate_series(1, 7); INSERT INTO a."b.c" SELECT generate_series(1, 3);`);
        const e = env("dots", dir("dots"));
        expect((await runCli(["backup"], e)).code).toBe(0);
        pg.psql("dots", `DROP TABLE a."b.c"`);
        const r = await runCli(["restore", "--into", "dots", "--tables", 'a."b.c"', "--force", "--no-safety-dump"], e);
        expect(r.code, r.stderr).toBe(0);
        expect(pg.psql("dots", `SELECT (SELECT count(*) FROM "a.b".c) || ' ' || (SELECT count(*) FROM a."b.c")`)).toBe("7 3");
    }, 60_000);
});

describe("failures a CronJob must not keep to itself", () => {
    it("arguments this image does not know (a stack newer than its image) exit 2 and notify", async () => {
        const hook = await webhookSink();
        try {
            const r = await runCli(["verify", "--from-every-target"], { PGDATABASE: "kong", BACKUP_LOCAL_DIR: dir("args"), BACKUP_WEBHOOK_URL: hook.url });
            expect(r.code).toBe(2);
            expect(hook.events).toHaveLength(1);
            expect(hook.events[0]).toMatchObject({ command: "verify", ok: false, database: "kong" });
            expect(hook.events[0].message).toMatch(/bad arguments: .*--from-every-target/);
        } finally {
            await hook.close();
        }
    });
});

describe("customer data never travels in a failure message", () => {
    it("a --tables restore failing on a changed column names the error, not the row's value", async () => {
        createDb("pii", "CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (1, 'alice@customer.example');");
        const e = env("pii", dir("pii"));
        expect((await runCli(["backup"], e)).code).toBe(0);
        pg.psql("pii", "ALTER TABLE users ALTER COLUMN email TYPE int USING 0");
        const hook = await webhookSink();
        try {
            const r = await runCli(["restore", "--into", "pii", "--tables", "users", "--data-only", "--force", "--no-safety-dump"], { ...e, BACKUP_WEBHOOK_URL: hook.url });
            expect(r.code).toBe(1);
            expect(logLines(r.stderr).find((l) => l.event === "restore.failed")?.msg).toMatch(/invalid input syntax for type integer: "…"\. pii is as it was/);
            expect(hook.events).toHaveLength(1);
            expect(`${r.stderr}${JSON.stringify(hook.events)}`).not.toContain("alice@customer.example");
        } finally {
            await hook.close();
        }
    }, 60_000);
});
