/**
 * The measured RTO end to end: real PostgreSQL, local + S3 (s3rver), the built CLI. verify times
 * the whole restore of the copy it restores, and status says which copy that was (verify rotates
 * through the targets: after the PVC is lost, the RTO on record may be the local copy's).
 */
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgCluster, S3Emulator, startPostgres, startS3, verifyServerEnv } from "../../jobs/dev/services";
import { cryptoExchangeSql } from "../../jobs/dev/sample";
import { logLines, runCli } from "../helpers/cli";

let source: PgCluster;
let verifier: PgCluster;
let s3: S3Emulator;
let work: string;
const DB = "crypto_exchange";
const PREFIX = "rto";

beforeAll(async () => {
    [source, verifier, s3] = await Promise.all([startPostgres(), startPostgres(), startS3()]);
    work = mkdtempSync(path.join(os.tmpdir(), "kx-rto-"));
    source.psql("postgres", `CREATE DATABASE ${DB}`);
    source.psql(DB, cryptoExchangeSql(100));
}, 120_000);

afterAll(async () => {
    source?.remove();
    verifier?.remove();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
});

function env(o: { local?: boolean } = {}): Record<string, string> {
    return {
        ...source.env(DB),
        ...(o.local === false ? {} : { BACKUP_LOCAL_DIR: path.join(work, "local") }),
        ...s3.env(),
        BACKUP_S3_PREFIX: PREFIX,
        ...verifyServerEnv(verifier),
    };
}

describe("the measured RTO", () => {
    it("status names the copy whose restore was timed, also when only another target is left", async () => {
        const b = await runCli(["backup", "--no-prune"], env());
        expect(b.code, b.stderr).toBe(0);
        const v = await runCli(["verify", "--json"], env());
        expect(v.code, v.stderr).toBe(0);
        const report = JSON.parse(v.stdout);
        expect(report.target).toBe("local");
        expect(report.restoreEndToEndMs).toBeGreaterThanOrEqual(report.restoreDurationMs);
        // The PVC is gone: only S3 is configured, and its record is the local run's.
        const st = await runCli(["status", "--json"], env({ local: false }));
        const row = JSON.parse(st.stdout)[0];
        expect(row.newestVerified).toMatchObject({ target: "s3", restoredFrom: "local", restoreEndToEnd: true });
    }, 120_000);

    it("a bad copy's failed download is not counted in the good copy's time", async () => {
        await new Promise((r) => setTimeout(r, 1100));
        const b = await runCli(["backup", "--no-prune"], env());
        expect(b.code, b.stderr).toBe(0);
        const key = logLines(b.stderr).find((l) => l.event === "backup.done")!.key as string;
        // Rotation's turn is S3's; its copy is replaced by 150 MB of something else, which verify
        // downloads whole before the size check fails, and then restores the local copy.
        const client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
        await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}/${key}`, Body: Buffer.alloc(150 * 1024 * 1024, 7) }));
        const v = await runCli(["verify", "--json"], env());
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
});
