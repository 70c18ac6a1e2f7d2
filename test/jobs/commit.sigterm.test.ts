/**
 * A real SIGTERM in the middle of an upload, at the commit level: the process's own signal
 * handler (as the CLI wires it) aborts shutdownSignal, and every target's upload stops and
 * removes what it staged. Its own file: a stop cannot be undone within a process.
 *
 * The CLI-level test drives the same path: start `kx-backup backup` with a large database,
 * wait for the first progress line, `kill -TERM <pid>`, expect exit 143 and nothing on any target.
 */
import { randomBytes } from "crypto";
import { mkdtempSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { PassThrough } from "stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AzureEmulator, S3Emulator, startAzurite, startS3 } from "../../jobs/dev/services";
import { streamToTargets } from "../../jobs/src/commit";
import { Logger } from "../../jobs/src/log";
import { backupKey } from "../../jobs/src/naming";
import { requestStop, ShutdownError } from "../../jobs/src/shutdown";
import { LocalTarget, Target } from "../../jobs/src/targets";
import { AzureTarget } from "../../jobs/src/targets/azure";
import { S3Target } from "../../jobs/src/targets/s3";
import { MIB } from "../helpers/targetContract";

let s3: S3Emulator;
let azure: AzureEmulator;
let root: string;

beforeAll(async () => {
    [s3, azure] = await Promise.all([startS3(), startAzurite()]);
    root = mkdtempSync(path.join(os.tmpdir(), "kx-sigterm-"));
}, 60_000);

afterAll(async () => {
    await Promise.all([s3?.stop(), azure?.stop()]);
    rmSync(root, { recursive: true, force: true });
});

it("SIGTERM mid-upload: the run fails with exit code 143 and leaves nothing on local, S3 or Azure", async () => {
    const targets: Target[] = [
        new LocalTarget(root),
        new S3Target({ bucket: s3.bucket, prefix: "term", endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } }),
        new AzureTarget({ container: azure.container, prefix: "term", connectionString: azure.connectionString }),
    ];
    const onTerm = () => requestStop("SIGTERM");
    process.once("SIGTERM", onTerm);
    const key = backupKey(undefined, "db", new Date(), "dump");
    const source = new PassThrough();
    let killed = false;
    const producerStopped = new Promise<void>((resolve) => source.once("close", resolve));
    // No signal passed: the job's own shutdownSignal.
    const run = streamToTargets(source, targets, {
        key, expectedBytes: 0, alongside: [], label: "db", log: new Logger("json", new PassThrough()), startedAt: new Date(),
        onFailure: () => {
            killed = true;
        },
    });
    for (let i = 0; i < 12; i++) {
        source.write(randomBytes(MIB));
    }
    await new Promise((r) => setTimeout(r, 600));
    process.kill(process.pid, "SIGTERM");
    const err = await run.then(() => undefined, (e) => e as Error);
    expect(err).toBeInstanceOf(ShutdownError);
    expect((err as ShutdownError).exitCode).toBe(143);
    expect(killed).toBe(true);
    await producerStopped;
    const left = (await Promise.all(targets.map((t) => t.list("db/")))).flat();
    expect(left).toEqual([]);
    process.removeListener("SIGTERM", onTerm);
});
