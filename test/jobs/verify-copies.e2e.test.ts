/**
 * Every copy is checked: verify without --from streams each target's copy through sha256, and
 * test-restores one copy, rotating through the targets across runs (by the .verify.json
 * records). A bad copy on one target fails verify, names it, and says which --from is good.
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgCluster, S3Emulator, startPostgres, startS3 } from "../../jobs/dev/services";
import { cryptoExchangeSql } from "../../jobs/dev/sample";
import { METRICS } from "../../jobs/src/metricNames";
import { metricsFor } from "../../jobs/src/notify";
import { logLines, runCli } from "../helpers/cli";

let source: PgCluster;
let verifier: PgCluster;
let s3: S3Emulator;
let work: string;
const DB = "crypto_exchange";
const PREFIX = "copies";

beforeAll(async () => {
    [source, verifier, s3] = await Promise.all([startPostgres(), startPostgres(), startS3()]);
    work = mkdtempSync(path.join(os.tmpdir(), "kx-copies-"));
    source.psql("postgres", `CREATE DATABASE ${DB}`);
    source.psql(DB, cryptoExchangeSql(100));
}, 120_000);

afterAll(async () => {
    source?.remove();
    verifier?.remove();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
});

function env(): Record<string, string> {
    return {
        ...source.env(DB),
        BACKUP_LOCAL_DIR: path.join(work, "local"),
        ...s3.env(),
        BACKUP_S3_PREFIX: PREFIX,
        VERIFY_PGHOST: "127.0.0.1",
        VERIFY_PGPORT: String(verifier.port),
        VERIFY_PGUSER: "postgres",
        VERIFY_PGPASSWORD: verifier.password,
    };
}

async function backup(): Promise<string> {
    const r = await runCli(["backup", "--no-prune"], env());
    expect(r.code, r.stderr).toBe(0);
    return logLines(r.stderr).find((l) => l.event === "backup.done")!.key as string;
}

async function verify(...args: string[]) {
    const r = await runCli(["verify", "--json", ...args], env());
    return { ...r, report: r.stdout ? JSON.parse(r.stdout) : undefined, error: logLines(r.stderr).filter((l) => l.level === "error").at(-1)?.msg as string | undefined };
}

const client = () => new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });

describe("verify checks every copy", () => {
    it("test-restores a different target's copy on each run, checking the others' sha256", async () => {
        const key = await backup();
        const targets: string[] = [];
        for (let run = 0; run < 3; run++) {
            const r = await verify();
            expect(r.code, r.stderr).toBe(0);
            expect(r.report.copies.map((c: { target: string; ok: boolean }) => [c.target, c.ok]).sort()).toEqual([["local", true], ["s3", true]]);
            targets.push(r.report.target);
        }
        expect(targets).toEqual(["local", "s3", "local"]);
        expect(existsSync(path.join(work, "local", `${key}.verify.json`))).toBe(true);
        await client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}/${key}.verify.json` }));
    });

    it("fails on a corrupt S3 copy, names it, and says which --from still has a good copy", async () => {
        await new Promise((r) => setTimeout(r, 1100)); // a newer backup: names carry seconds
        const key = await backup();
        const s3Key = `${PREFIX}/${key}`;
        const body = Buffer.from(await (await client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3Key }))).Body!.transformToByteArray());
        body[Math.floor(body.length / 2)] ^= 0xff;
        await client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3Key, Body: body }));

        const r = await verify();
        expect(r.code).toBe(1);
        // The rotation's turn was s3's (its last test-restore is the oldest): the good local copy is restored instead.
        expect(r.error).toMatch(/^verify crypto_exchange failed at copies: the copy on s3 is bad \(checksum mismatch .*sha256 [0-9a-f]{64} ≠ manifest [0-9a-f]{64} \(corrupted\)\); a good copy is on local: restore with --from local$/);
        // The good copy was still test-restored, and is recorded as verified; the bad one is not.
        expect(r.report.restoreDurationMs).toBeGreaterThan(0);
        expect(r.report.target).toBe("local");
        expect(readdirSync(path.join(work, "local", DB))).toContain(`${path.basename(key)}.verify.json`);
        await expect(client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${s3Key}.verify.json` }))).rejects.toThrow();

        const fromS3 = await verify("--from", "s3");
        expect(fromS3.code).toBe(1);
        expect(fromS3.error).toMatch(/failed at checksum: checksum mismatch for crypto_exchange\/.*\.dump on s3/);
        const fromLocal = await verify("--from", "local");
        expect(fromLocal.code, fromLocal.stderr).toBe(0);
        expect(verifier.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'kx%'")).toBe("0");
    });
});

/**
 * The measured RTO end to end: verify times the whole restore of the copy it restores, and status
 * says which copy that was (after the PVC is lost, the RTO on record may be the local copy's).
 * Its own local folder and prefix, so the rotation above is not disturbed.
 */
function rtoEnv(o: { local?: boolean } = {}): Record<string, string> {
    const { BACKUP_LOCAL_DIR: _local, ...rest } = env();
    return { ...rest, ...(o.local === false ? {} : { BACKUP_LOCAL_DIR: path.join(work, "rto-local") }), BACKUP_S3_PREFIX: "rto" };
}

describe("the measured RTO", () => {
    it("status names the copy whose restore was timed, also when only another target is left", async () => {
        const b = await runCli(["backup", "--no-prune"], rtoEnv());
        expect(b.code, b.stderr).toBe(0);
        const v = await runCli(["verify", "--json"], rtoEnv());
        expect(v.code, v.stderr).toBe(0);
        const report = JSON.parse(v.stdout);
        expect(report.target).toBe("local");
        expect(report.restoreEndToEndMs).toBeGreaterThanOrEqual(report.restoreDurationMs);
        // The PVC is gone: only S3 is configured, and its record is the local run's.
        const st = await runCli(["status", "--json"], rtoEnv({ local: false }));
        const row = JSON.parse(st.stdout)[0];
        expect(row.newestVerified).toMatchObject({ target: "s3", restoredFrom: "local", restoreEndToEnd: true });
    }, 120_000);

    it("a bad copy's failed download is not counted in the good copy's time", async () => {
        await new Promise((r) => setTimeout(r, 1100));
        const b = await runCli(["backup", "--no-prune"], rtoEnv());
        expect(b.code, b.stderr).toBe(0);
        const key = logLines(b.stderr).find((l) => l.event === "backup.done")!.key as string;
        // Rotation's turn is S3's; its copy is replaced by 150 MB of something else, which verify
        // downloads whole before the size check fails, and then restores the local copy.
        await client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: `rto/${key}`, Body: Buffer.alloc(150 * 1024 * 1024, 7) }));
        const v = await runCli(["verify", "--json"], rtoEnv());
        expect(v.code).toBe(1);
        const report = JSON.parse(v.stdout);
        expect(report.target).toBe("local");
        const checksums = report.steps.filter((s: { step: string }) => s.step === "checksum");
        expect(checksums.map((s: { ok: boolean }) => s.ok)).toEqual([false, true]);
        // Everything but the failed download: the end-to-end time fits in what is left of the run.
        const wall = Date.parse(report.finishedAt) - Date.parse(report.startedAt);
        expect(report.restoreEndToEndMs).toBeGreaterThanOrEqual(checksums[1].durationMs + report.restoreDurationMs);
        expect(report.restoreEndToEndMs).toBeLessThanOrEqual(wall - checksums[0].durationMs);
    }, 180_000);

    it("after the PVC is lost, S3's RTO is S3's own newest restore, carried by the newest record when older ones are gone", async () => {
        const run = async (args: string[]) => {
            const r = await runCli(args, rtoEnv());
            expect(r.code, r.stderr).toBe(0);
            return r;
        };
        await new Promise((r) => setTimeout(r, 1100));
        const third = logLines((await run(["backup", "--no-prune"])).stderr).find((l) => l.event === "backup.done")!.key as string;
        // Local was timed twice (the bad S3 copy above was never restored): S3's turn.
        const v3 = JSON.parse((await run(["verify", "--json"])).stdout);
        expect(v3.target).toBe("s3");
        expect(v3.restoreByCopy.s3).toEqual({ key: third, finishedAt: v3.finishedAt, restoreDurationMs: v3.restoreDurationMs, restoreEndToEndMs: v3.restoreEndToEndMs });
        expect(v3.restoreByCopy.local.key).not.toBe(third); // the earlier local run's, carried
        await new Promise((r) => setTimeout(r, 1100));
        const fourth = logLines((await run(["backup", "--no-prune"])).stderr).find((l) => l.event === "backup.done")!.key as string;
        const v4 = JSON.parse((await run(["verify", "--json"])).stdout);
        expect(v4.target).toBe("local");
        expect(v4.restoreByCopy.s3).toEqual(v3.restoreByCopy.s3);
        // The older records deleted by hand, as prune deletes them with their backups: on S3 only the newest is left.
        const listed = await client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `rto/${DB}/` }));
        for (const o of (listed.Contents ?? []).filter((x) => x.Key!.endsWith(".verify.json") && !x.Key!.includes(path.basename(fourth)))) {
            await client().send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: o.Key! }));
        }
        // The PVC is gone: status reads S3 alone, and still judges S3's RTO on S3's restore.
        const st = await runCli(["status", "--json"], rtoEnv({ local: false }));
        const row = JSON.parse(st.stdout)[0];
        expect(row.newestVerified).toMatchObject({ key: fourth, restoredFrom: "local" });
        expect(row.restoreByCopy.s3).toMatchObject({ key: third, verifiedAt: v3.finishedAt, restoreMinutes: Math.round(v3.restoreEndToEndMs / 6_000) / 10, restoreEndToEnd: true, overRto: false });
        // The local copy is no longer configured: it has no RTO left to judge.
        expect(row.restoreByCopy.local).toBeUndefined();
        const both = JSON.parse((await runCli(["status", "--json"], rtoEnv())).stdout)[0];
        expect(both.restoreByCopy.local).toMatchObject({ key: fourth, verifiedAt: v4.finishedAt });
    }, 240_000);

    it("a copy taken out of the configuration: verify stops carrying its time, the gauge stops pushing it, status stops judging it", async () => {
        const { BACKUP_LOCAL_DIR: _local, ...rest } = env();
        const retired = (o: { s3: boolean }) => {
            const e: Record<string, string> = { ...rest, BACKUP_LOCAL_DIR: path.join(work, "retired-local"), BACKUP_S3_PREFIX: "retired" };
            if (!o.s3) {
                for (const k of Object.keys(s3.env())) {
                    delete e[k];
                }
                delete e.BACKUP_S3_PREFIX;
            }
            return e;
        };
        const run = async (args: string[], o: { s3: boolean }) => {
            const r = await runCli(args, retired(o));
            expect(r.code, r.stderr).toBe(0);
            return r;
        };
        await run(["backup", "--no-prune"], { s3: true });
        expect(JSON.parse((await run(["verify", "--json"], { s3: true })).stdout).target).toBe("local");
        const timedS3 = JSON.parse((await run(["verify", "--json"], { s3: true })).stdout);
        expect(timedS3.target).toBe("s3");
        expect(Object.keys(timedS3.restoreByCopy).sort()).toEqual(["local", "s3"]);
        // The bucket is decommissioned: local only from now on.
        await new Promise((r) => setTimeout(r, 1100));
        await run(["backup", "--no-prune"], { s3: false });
        const after = JSON.parse((await run(["verify", "--json"], { s3: false })).stdout);
        expect(Object.keys(after.restoreByCopy)).toEqual(["local"]);
        const details = { key: after.key, target: after.target, restoreDurationMs: after.restoreDurationMs, restoreEndToEndMs: after.restoreEndToEndMs, restoreByCopy: after.restoreByCopy };
        const series = metricsFor({ command: "verify", ok: true, database: DB, message: "", details }, new Date()).filter((m) => m.name === METRICS.verifyRestoreDuration);
        expect(series.map((m) => m.labels?.target)).toEqual(["local"]);
        // The older record on the local target still carries S3's time: status does not judge a copy that is not configured.
        const st = JSON.parse((await runCli(["status", "--json"], retired({ s3: false }))).stdout)[0];
        expect(Object.keys(st.restoreByCopy)).toEqual(["local"]);
    }, 240_000);
});
