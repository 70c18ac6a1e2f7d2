/**
 * DR readiness end to end: `status` against real targets under a moved clock (faketime), and
 * the anomaly guard after a table loses 90 % of its rows.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgCluster, S3Emulator, startPostgres, startS3 } from "../../jobs/dev/services";
import { logLines, runCli } from "../helpers/cli";
import { webhookSink } from "../helpers/proxy";

let pg: PgCluster;
let s3: S3Emulator;
let work: string;
const DB = "kx_status";

beforeAll(async () => {
    [pg, s3] = await Promise.all([startPostgres(), startS3()]);
    work = mkdtempSync(path.join(os.tmpdir(), "kx-status-"));
    pg.psql("postgres", `CREATE DATABASE ${DB}`);
    pg.psql(DB, "CREATE TABLE trades (id int PRIMARY KEY, qty numeric); INSERT INTO trades SELECT g, g FROM generate_series(1, 5000) g; CREATE TABLE users (id int); INSERT INTO users SELECT generate_series(1, 50);");
}, 120_000);

afterAll(async () => {
    pg?.remove();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
});

function env(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
    const dir = path.join(work, prefix);
    mkdirSync(dir, { recursive: true });
    return { ...pg.env(DB), BACKUP_LOCAL_DIR: dir, ...s3.env(), BACKUP_S3_PREFIX: prefix, BACKUP_RPO_HOURS: "6", DONT_FAKE_MONOTONIC: "1", ...extra };
}

const errors = (stderr: string) => logLines(stderr).filter((l) => l.level === "error").map((l) => l.msg as string);

describe("status", () => {
    const prefix = "status";

    beforeAll(async () => {
        const b = await runCli(["backup", "--no-prune"], env(prefix));
        expect(b.code, b.stderr).toBe(0);
        const v = await runCli(["verify", "--from", "local"], env(prefix));
        expect(v.code, v.stderr).toBe(0);
    }, 120_000);

    it("exits 0 inside the RPO with a verified restore, as JSON when not on a terminal", async () => {
        const r = await runCli(["status"], env(prefix));
        expect(r.code, r.stderr).toBe(0);
        const [row] = JSON.parse(r.stdout);
        expect(row).toMatchObject({ database: DB, ok: true, targetsAgree: true, objectives: { rpoHours: 6, rtoMinutes: 30, verifyMaxAgeDays: 7 } });
        expect(row.targets.map((t: { target: string }) => t.target)).toEqual(["local", "s3"]);
        expect(row.newestVerified.target).toBe("local");
        expect(row.trend[0].rows).toBe(5050);
    });

    it("7 h later, with a 6 h RPO: exit 1, naming the database and the RPO", async () => {
        const r = await runCli(["status"], env(prefix), { wrap: ["faketime", "-f", "+7h"] });
        expect(r.code).toBe(1);
        expect(errors(r.stderr)).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${DB}: RPO: newest full backup .* is 7\\.0h old \\(RPO 6 h\\)$`))]));
    });

    it("8 days later: verify age is out too; a slow restore test is out of the RTO", async () => {
        const late = await runCli(["status", "--json"], env(prefix, { BACKUP_RPO_HOURS: "1000" }), { wrap: ["faketime", "-f", "+8d"] });
        expect(late.code).toBe(1);
        expect(errors(late.stderr)).toEqual(expect.arrayContaining([expect.stringMatching(/verify age: the last restore test .* was 8 d ago \(allowed 7 d\)/)]));
        // A restore that took 45 minutes end to end (the record as verify writes it, edited).
        const dir = path.join(work, prefix, DB);
        const record = readdirSync(dir).find((f) => f.endsWith(".verify.json"))!;
        const body = JSON.parse(readFileSync(path.join(dir, record), "utf8"));
        expect(body.restoreEndToEndMs).toBeGreaterThanOrEqual(body.restoreDurationMs);
        writeFileSync(path.join(dir, record), JSON.stringify({ ...body, restoreEndToEndMs: 45 * 60_000 }));
        const slow = await runCli(["status", "--json"], env(prefix));
        expect(slow.code).toBe(1);
        expect(errors(slow.stderr)).toEqual(expect.arrayContaining([
            expect.stringMatching(new RegExp(`^${DB}: RTO: the last restore test of the copy on local \\(${DB}/\\S+\\.dump, 0 d ago\\) took 45m0s end to end \\(fetch, checks, pg_restore, comparison\\) \\(RTO 30 min\\)$`)),
        ]));
        writeFileSync(path.join(dir, record), JSON.stringify(body));
    });
});

describe("anomaly guard", () => {
    const prefix = "anomaly";

    it("flags a backup after 90 % of a table is deleted: manifest, list, urgent notification, status; the good backup survives prune", async () => {
        // The good backup, two days ago.
        const good = await runCli(["backup", "--no-prune"], env(prefix), { wrap: ["faketime", "-f", "-2d"] });
        expect(good.code, good.stderr).toBe(0);
        const goodKey = logLines(good.stderr).find((l) => l.event === "backup.done")?.key as string;
        pg.psql(DB, "DELETE FROM trades WHERE id % 10 <> 0");
        const hook = await webhookSink();
        try {
            const bad = await runCli(["backup"], env(prefix, { BACKUP_RETENTION_DAYS: "1", BACKUP_KEEP_MIN: "1", BACKUP_WEBHOOK_URL: hook.url }));
            const badKey = logLines(bad.stderr).find((l) => l.event === "backup.done")?.key as string;
            // The prune after it refuses: the only good backup is older than the retention.
            expect(bad.code).toBe(1);
            expect(errors(bad.stderr).join("\n")).toMatch(/1 newer backup\(s\) are anomalous; nothing deleted/);
            expect(logLines(bad.stderr).find((l) => l.event === "backup.anomaly")?.msg).toMatch(/ANOMALOUS .*public\.trades: 5000 → 500 rows \(-90 %\)/);
            const manifest = JSON.parse(readFileSync(path.join(work, prefix, `${badKey}.manifest.json`), "utf8"));
            // The size collapses with the table (it is most of the database): both are reported.
            expect(manifest.anomaly).toEqual({ reasons: [expect.stringMatching(/^size .* \(-\d+ %\)$/), "public.trades: 5000 → 500 rows (-90 %)"], comparedWith: goodKey });
            const urgent = hook.events.find((e) => e.ok === true);
            expect(urgent).toMatchObject({ command: "backup", urgent: true });
            expect(urgent?.message).toMatch(/ANOMALOUS/);
            // Both backups are still there, on both targets.
            const list = JSON.parse((await runCli(["list", "--json"], env(prefix))).stdout) as { target: string; name: string; status: string; anomaly?: string[] }[];
            for (const target of ["local", "s3"]) {
                expect(list.filter((r) => r.target === target).map((r) => r.status)).toEqual(["anomalous", "complete"]);
            }
            expect(list[0].anomaly).toContain("public.trades: 5000 → 500 rows (-90 %)");
            // status fails while the newest full backup is anomalous.
            const status = await runCli(["status"], env(prefix, { BACKUP_RPO_HOURS: "100" }));
            expect(status.code).toBe(1);
            expect(errors(status.stderr)).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${DB}: anomaly: newest full backup .* is anomalous: .*public\\.trades: 5000 → 500 rows`))]));
            // verify tests the anomalous backup when named, but its (much smaller) restore is no copy's RTO: nothing carried.
            const tested = await runCli(["verify", "--json", "--from", "local", "--backup", badKey.slice(DB.length + 1)], env(prefix));
            expect(tested.code, tested.stderr).toBe(0);
            const report = JSON.parse(tested.stdout);
            expect(report).toMatchObject({ key: badKey, ok: true, target: "local" });
            expect(report.restoreByCopy).toEqual({});
            // restore latest refuses the anomalous one and names both.
            const restore = await runCli(["restore", "--into", "kx_anomaly_copy", "--plan"], env(prefix));
            expect(restore.code).toBe(2);
            expect(errors(restore.stderr)[0]).toMatch(/is anomalous .* --backup .* to restore it anyway, or restore the newest good one: --backup /);
            // Another bad backup: still flagged against the last good one, which still survives.
            const again = await runCli(["backup"], env(prefix, { BACKUP_RETENTION_DAYS: "1", BACKUP_KEEP_MIN: "1" }));
            expect(logLines(again.stderr).some((l) => l.event === "backup.anomaly")).toBe(true);
            expect(readdirSync(path.join(work, prefix, DB))).toContain(goodKey.slice(DB.length + 1));
            // An expected drop is accepted explicitly and becomes the new baseline.
            const accepted = await runCli(["backup", "--accept-anomaly", "--no-prune"], env(prefix));
            expect(accepted.code, accepted.stderr).toBe(0);
            const acceptedKey = logLines(accepted.stderr).find((l) => l.event === "backup.done")?.key as string;
            const am = JSON.parse(readFileSync(path.join(work, prefix, `${acceptedKey}.manifest.json`), "utf8"));
            expect(am.anomaly).toBeUndefined();
            expect(am.acceptedAnomaly.reasons).toContain("public.trades: 5000 → 500 rows (-90 %)");
            const next = await runCli(["backup", "--no-prune"], env(prefix));
            expect(logLines(next.stderr).some((l) => l.event === "backup.anomaly")).toBe(false);
        } finally {
            await hook.close();
            pg.psql(DB, "INSERT INTO trades SELECT g, g FROM generate_series(1, 5000) g WHERE g % 10 <> 0");
        }
    }, 180_000);
});
