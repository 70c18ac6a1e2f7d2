/** Notifications and metrics against a local HTTP server standing in for ntfy, a webhook and a Pushgateway. */
import { mkdtempSync, rmSync } from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { Writable } from "stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { freePort, PgCluster, startPostgres } from "../../jobs/dev/services";
import { Logger } from "../../jobs/src/log";
import { metricsBody, metricsFor, notify } from "../../jobs/src/notify";
import { loadSettings, Settings } from "../../jobs/src/settings";
import { logLines, runCli } from "../helpers/cli";

interface Received {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    body: string;
}

let server: http.Server;
let base: string;
let received: Received[] = [];
/** Paths answering 500 (a channel that is down). */
let failing = new Set<string>();

beforeAll(async () => {
    const port = await freePort();
    server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
            const path = req.url!.split("/")[1];
            res.writeHead(failing.has(path) ? 500 : 200).end("ok");
        });
    });
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    base = `http://127.0.0.1:${port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

beforeEach(() => {
    received = [];
    failing = new Set();
});

function settings(extra: Record<string, string>): Settings {
    const r = loadSettings({ BACKUP_LOCAL_DIR: "/tmp/x", PGDATABASE: "crypto_exchange", ...extra });
    if (!r.ok) {
        throw new Error(r.errors.join());
    }
    return r.settings;
}

function quietLog() {
    let text = "";
    const log = new Logger("json", new Writable({ write(c, _e, cb) { text += c; cb(); } }), false);
    return { log, lines: () => text.split("\n").filter(Boolean).map((l) => JSON.parse(l)) };
}

const fast = { tries: 3, backoffMs: 10, timeoutMs: 2000 };

describe("notify", () => {
    it("sends a failure to ntfy as the runbook does: urgent, rotating_light, with the token", async () => {
        const s = settings({ BACKUP_NTFY_URL: `${base}/ntfy/kx-alerts`, BACKUP_NTFY_TOKEN: "tk_secret" });
        const { log } = quietLog();
        await notify(s, { command: "backup", ok: false, database: "crypto_exchange", message: "pg_dump failed" }, log, fast);
        expect(received).toHaveLength(1);
        expect(received[0]).toMatchObject({ method: "POST", url: "/ntfy/kx-alerts", body: "pg_dump failed" });
        expect(received[0].headers).toMatchObject({
            title: "KrystalineX backup FAILED: crypto_exchange",
            priority: "urgent",
            tags: "rotating_light,floppy_disk",
            authorization: "Bearer tk_secret",
        });
    });

    it("stays quiet on success unless asked, and then says so at default priority", async () => {
        const { log } = quietLog();
        await notify(settings({ BACKUP_NTFY_URL: `${base}/ntfy/t` }), { command: "verify", ok: true, database: "kong", message: "ok" }, log, fast);
        expect(received).toHaveLength(0);
        await notify(settings({ BACKUP_NTFY_URL: `${base}/ntfy/t`, BACKUP_NOTIFY_ON_SUCCESS: "true" }), { command: "verify", ok: true, database: "kong", message: "ok" }, log, fast);
        expect(received[0].headers).toMatchObject({ priority: "default", tags: "white_check_mark,floppy_disk" });
    });

    it("posts JSON to the webhook", async () => {
        const { log } = quietLog();
        await notify(settings({ BACKUP_WEBHOOK_URL: `${base}/hook` }), { command: "prune", ok: false, database: "kong", message: "stale", details: { n: 1 } }, log, fast);
        expect(received[0].headers["content-type"]).toBe("application/json");
        expect(JSON.parse(received[0].body)).toMatchObject({ source: "kx-backup", command: "prune", ok: false, database: "kong", message: "stale", details: { n: 1 } });
    });

    it("pushes per-database metrics to the Pushgateway, success or not", async () => {
        const { log } = quietLog();
        const now = new Date("2026-06-01T00:00:00Z");
        const s = settings({ BACKUP_PUSHGATEWAY_URL: `${base}/pgw/` });
        await notify(s, { command: "backup", ok: true, database: "crypto_exchange", message: "ok", details: { bytes: 1234, durationMs: 5000 } }, log, fast, now);
        await notify(s, { command: "verify", ok: true, database: "crypto_exchange", message: "ok", details: { target: "local", restoreDurationMs: 42000 } }, log, fast, now);
        expect(received.map((r) => [r.method, r.url])).toEqual([
            ["POST", "/pgw/metrics/job/kx_backup/database/crypto_exchange"],
            ["POST", "/pgw/metrics/job/kx_backup/database/crypto_exchange"],
        ]);
        expect(received[0].body).toContain(`kx_backup_last_success_timestamp_seconds ${now.getTime() / 1000}\n`);
        expect(received[0].body).toContain("kx_backup_size_bytes 1234\n");
        expect(received[0].body).toContain("kx_backup_duration_seconds 5\n");
        expect(received[1].body).toContain('kx_backup_verify_restore_duration_seconds{target="local"} 42\n');
        expect(received[1].body).toContain("kx_backup_last_verified_timestamp_seconds");
        // With the end-to-end time (fetch, checks, pg_restore, comparison), that is the RTO pushed.
        await notify(s, { command: "verify", ok: true, database: "crypto_exchange", message: "ok", details: { target: "local", restoreDurationMs: 42000, restoreEndToEndMs: 61500 } }, log, fast, now);
        expect(received[2].body).toContain('kx_backup_verify_restore_duration_seconds{target="local"} 61.5\n');
    });

    it("pushes every copy's newest restore time in one push, one series under each target label, an unusable one as +Inf", async () => {
        const { log } = quietLog();
        const s = settings({ BACKUP_PUSHGATEWAY_URL: `${base}/pgw` });
        const t = (ms: number) => ({ key: "crypto_exchange/b.dump", finishedAt: "2026-05-30T00:00:00Z", restoreDurationMs: ms / 2, restoreEndToEndMs: ms });
        // This run restored the local copy in 61.5 s; S3's newest (two runs ago) took 40 min; Azure's record is unusable.
        const restoreByCopy = { local: t(61_500), s3: t(2_400_000), azure: { ...t(1), restoreEndToEndMs: "soon" } };
        await notify(s, { command: "verify", ok: true, database: "crypto_exchange", message: "ok", details: { target: "local", restoreDurationMs: 42000, restoreEndToEndMs: 61500, restoreByCopy } }, log, fast);
        const body = received[0].body;
        expect(body.match(/# HELP kx_backup_verify_restore_duration_seconds /g)).toHaveLength(1);
        expect(body.match(/# TYPE kx_backup_verify_restore_duration_seconds gauge/g)).toHaveLength(1);
        // Azure's is +Inf: over any RTO, so its alert fires as status calls it a problem (not a vanished series, a resolved alert).
        expect(body.split("\n").filter((l) => l.startsWith("kx_backup_verify_restore_duration_seconds"))).toEqual([
            'kx_backup_verify_restore_duration_seconds{target="local"} 61.5',
            'kx_backup_verify_restore_duration_seconds{target="s3"} 2400',
            'kx_backup_verify_restore_duration_seconds{target="azure"} +Inf',
        ]);
    });

    it("retries a channel that fails, and logs (never throws) when it stays down", async () => {
        failing.add("ntfy");
        const { log, lines } = quietLog();
        await notify(settings({ BACKUP_NTFY_URL: `${base}/ntfy/t`, BACKUP_WEBHOOK_URL: `${base}/hook` }), { command: "backup", ok: false, database: "kong", message: "x" }, log, fast);
        expect(received.filter((r) => r.url.startsWith("/ntfy"))).toHaveLength(3);
        expect(received.filter((r) => r.url === "/hook")).toHaveLength(1);
        expect(lines().find((l) => l.event === "notify.failed")).toMatchObject({ level: "warn", channel: "ntfy" });
    });

    it("survives a channel that is not there at all", async () => {
        const closed = await freePort();
        const { log, lines } = quietLog();
        await notify(settings({ BACKUP_PUSHGATEWAY_URL: `http://127.0.0.1:${closed}` }), { command: "backup", ok: true, database: "kong", message: "x" }, log, fast);
        expect(lines().find((l) => l.event === "notify.failed")?.channel).toBe("pushgateway");
    });

    it("renders the Prometheus text format", () => {
        expect(metricsBody([{ name: "a_b", help: "H.", value: 1.5 }])).toBe("# HELP a_b H.\n# TYPE a_b gauge\na_b 1.5\n");
    });

    it("pushes a failure of every notifying command under its own name, undelete and restore-archive included", () => {
        const now = new Date("2026-06-01T00:00:00Z");
        for (const [command, metric] of [["undelete", "kx_backup_undelete_last_failure_timestamp_seconds"], ["restore-archive", "kx_backup_restore_archive_last_failure_timestamp_seconds"]] as const) {
            expect(metricsFor({ command, ok: false, message: "x" }, now)).toEqual([{ name: metric, help: `Last failed ${command}.`, value: now.getTime() / 1000 }]);
        }
    });
});

describe("the CLI notifies", () => {
    let pg: PgCluster;
    beforeAll(async () => {
        pg = await startPostgres();
        pg.psql("postgres", "CREATE DATABASE kong");
        pg.psql("kong", "CREATE TABLE routes (id int); INSERT INTO routes SELECT generate_series(1, 10)");
    }, 60_000);
    afterAll(() => pg?.remove());

    it("on a failed backup (without leaking the password), and a dead channel never fails a good backup", async () => {
        const dir = mkdtempSync(path.join(os.tmpdir(), "kx-notify-"));
        onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
        const bad = await runCli(["backup"], { ...pg.env("kong"), PGPASSWORD: "wrong-pw-123", BACKUP_LOCAL_DIR: dir, BACKUP_NTFY_URL: `${base}/ntfy/t` });
        expect(bad.code).toBe(1);
        const alert = received.find((r) => r.url === "/ntfy/t")!;
        expect(alert.headers.priority).toBe("urgent");
        expect(alert.body).toMatch(/password authentication failed/);
        expect(alert.body).not.toContain("wrong-pw-123");

        failing.add("ntfy");
        const good = await runCli(["backup"], { ...pg.env("kong"), BACKUP_LOCAL_DIR: dir, BACKUP_NTFY_URL: `${base}/ntfy/t`, BACKUP_NOTIFY_ON_SUCCESS: "true", BACKUP_PUSHGATEWAY_URL: `${base}/pgw` });
        expect(good.code, good.stderr).toBe(0);
        expect(logLines(good.stderr).some((l) => l.event === "notify.failed" && l.channel === "ntfy")).toBe(true);
        expect(received.some((r) => r.url.startsWith("/pgw/metrics/job/kx_backup/database/kong"))).toBe(true);
    }, 60_000);

    it("when its settings are invalid: exit 2, and the failure still reaches the webhook, without the password", async () => {
        const r = await runCli(["backup"], { ...pg.env("kong"), PGPASSWORD: "secret-pw-456", BACKUP_LOCAL_DIR: "/tmp/x", BACKUP_RETENTION_DAYS: "thirty", BACKUP_WEBHOOK_URL: `${base}/hook` });
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/BACKUP_RETENTION_DAYS="thirty" is not allowed/);
        const hook = received.find((x) => x.url === "/hook")!;
        expect(JSON.parse(hook.body)).toMatchObject({ command: "backup", ok: false, database: "kong", message: expect.stringMatching(/invalid settings: BACKUP_RETENTION_DAYS="thirty"/) });
        expect(hook.body).not.toContain("secret-pw-456");
    }, 60_000);

    it("a schema-only backup does not reset the RPO clock: no success metrics for partial backups", async () => {
        const dir = mkdtempSync(path.join(os.tmpdir(), "kx-notify-"));
        onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
        const r = await runCli(["backup", "--schema-only", "--no-prune"], { ...pg.env("kong"), BACKUP_LOCAL_DIR: dir, BACKUP_PUSHGATEWAY_URL: `${base}/pgw` });
        expect(r.code, r.stderr).toBe(0);
        expect(received.filter((x) => x.url.startsWith("/pgw")).map((x) => x.body).join("")).not.toContain("kx_backup_last_success_timestamp_seconds");
        const full = await runCli(["backup", "--no-prune"], { ...pg.env("kong"), BACKUP_LOCAL_DIR: dir, BACKUP_PUSHGATEWAY_URL: `${base}/pgw` });
        expect(full.code, full.stderr).toBe(0);
        const pushed = received.filter((x) => x.url.startsWith("/pgw")).map((x) => x.body).join("");
        expect(pushed).toContain("kx_backup_last_success_timestamp_seconds");
        expect(pushed).toMatch(/kx_backup_anomaly 0/);
    }, 60_000);
});
