/** archive / restore-archive end to end through all three targets, and the unsafe-archive guards. */
import { createHash } from "crypto";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AzureEmulator, S3Emulator, startAzurite, startS3 } from "../../jobs/dev/services";
import { summarizeTree } from "../../jobs/src/archive";
import { logLines, runCli } from "../helpers/cli";
import { manifestFor } from "../helpers/manifests";

let s3: S3Emulator;
let azure: AzureEmulator;
let work: string;
let tree: string;
const LONG = `${"deeply-nested-directory-name/".repeat(4)}a-file-name-long-enough-to-need-gnu-long-names.txt`;

beforeAll(async () => {
    [s3, azure] = await Promise.all([startS3(), startAzurite()]);
    work = mkdtempSync(path.join(os.tmpdir(), "kx-archive-"));
    tree = path.join(work, "tree");
    mkdirSync(path.join(tree, "config", "empty-dir"), { recursive: true });
    writeFileSync(path.join(tree, "config", "kong.yml"), "services: []\n");
    writeFileSync(path.join(tree, "secret.key"), "k3y");
    chmodSync(path.join(tree, "secret.key"), 0o600);
    writeFileSync(path.join(tree, "run.sh"), "#!/bin/sh\necho hi\n");
    chmodSync(path.join(tree, "run.sh"), 0o750);
    writeFileSync(path.join(tree, "Ünïcødé 文件 ✓.txt"), "non-ascii name");
    writeFileSync(path.join(tree, "blob.bin"), Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 251)));
    mkdirSync(path.join(tree, path.dirname(LONG)), { recursive: true });
    writeFileSync(path.join(tree, LONG), "long");
    symlinkSync("config/kong.yml", path.join(tree, "current.yml"));
}, 60_000);

afterAll(async () => {
    await Promise.all([s3?.stop(), azure?.stop()]);
    rmSync(work, { recursive: true, force: true });
});

function env(prefix: string): Record<string, string> {
    return {
        BACKUP_LOCAL_DIR: path.join(work, `local-${prefix}`),
        ...s3.env(),
        BACKUP_S3_PREFIX: prefix,
        ...azure.env(),
        BACKUP_AZURE_PREFIX: prefix,
    };
}

describe("archive and restore-archive", () => {
    it("round-trips a tree with symlinks, modes, empty directories and non-ASCII names through every target", async () => {
        const r = await runCli(["archive", "--name", "kong-config", "--path", tree], env("rt"));
        expect(r.code, r.stderr).toBe(0);
        const folder = path.join(work, "local-rt", "kong-config");
        const files = readdirSync(folder).sort();
        expect(files).toEqual([expect.stringMatching(/^kong-config-\d{8}-\d{6}-[0-9a-f]{6}\.tar\.gz$/), expect.stringMatching(/\.tar\.gz\.manifest\.json$/)]);
        const manifest = JSON.parse(readFileSync(path.join(folder, files[1]), "utf8"));
        expect(manifest).toMatchObject({ kind: "kx-backup/archive", format: "tar.gz", archive: { files: 6 } });
        expect(manifest.sha256).toBe(createHash("sha256").update(readFileSync(path.join(folder, files[0]))).digest("hex"));
        const source = await summarizeTree(tree);
        expect(manifest.archive.contentHash).toBe(source.contentHash);

        for (const from of ["local", "s3", "azure"]) {
            const into = path.join(work, `restored-${from}`);
            const x = await runCli(["restore-archive", "--name", "kong-config", "--into", into, "--from", from], env("rt"));
            expect(x.code, x.stderr).toBe(0);
            expect((await summarizeTree(into)).contentHash, from).toBe(source.contentHash);
            expect(readlinkSync(path.join(into, "current.yml"))).toBe("config/kong.yml");
            expect(lstatSync(path.join(into, "secret.key")).mode & 0o777).toBe(0o600);
            expect(lstatSync(path.join(into, "run.sh")).mode & 0o777).toBe(0o750);
            expect(lstatSync(path.join(into, "config", "empty-dir")).isDirectory()).toBe(true);
            expect(readFileSync(path.join(into, "Ünïcødé 文件 ✓.txt"), "utf8")).toBe("non-ascii name");
            expect(readFileSync(path.join(into, LONG), "utf8")).toBe("long");
        }
    });

    it("--if-changed skips an unchanged tree, and uploads again once it changes", async () => {
        const dir = path.join(work, "changing");
        mkdirSync(dir);
        writeFileSync(path.join(dir, "a.txt"), "one");
        const first = await runCli(["archive", "--name", "cfg", "--path", dir, "--if-changed"], env("ifc"));
        expect(first.code, first.stderr).toBe(0);
        const second = await runCli(["archive", "--name", "cfg", "--path", dir, "--if-changed"], env("ifc"));
        expect(second.code, second.stderr).toBe(0);
        expect(logLines(second.stderr).find((l) => l.event === "archive.unchanged")?.msg).toMatch(/archive cfg: unchanged since cfg\/cfg-\d{8}-\d{6}-[0-9a-f]{6}\.tar\.gz .*nothing uploaded/);
        expect(readdirSync(path.join(work, "local-ifc", "cfg")).filter((f) => f.endsWith(".tar.gz"))).toHaveLength(1);
        await new Promise((r) => setTimeout(r, 1100)); // names carry seconds
        writeFileSync(path.join(dir, "a.txt"), "two");
        const third = await runCli(["archive", "--name", "cfg", "--path", dir, "--if-changed"], env("ifc"));
        expect(third.code, third.stderr).toBe(0);
        expect(readdirSync(path.join(work, "local-ifc", "cfg")).filter((f) => f.endsWith(".tar.gz"))).toHaveLength(2);
    });

    it("refuses a non-empty directory without --force", async () => {
        const into = path.join(work, "occupied");
        mkdirSync(into);
        writeFileSync(path.join(into, "keep.txt"), "mine");
        const r = await runCli(["restore-archive", "--name", "kong-config", "--into", into], env("rt"));
        expect(r.code).toBe(2);
        expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(/is not empty \(1 entries\): add --force/);
        expect(readdirSync(into)).toEqual(["keep.txt"]);
    });

    it("applies retention to archives like to dumps", async () => {
        const local = path.join(work, "local-ret");
        mkdirSync(path.join(local, "vol"), { recursive: true });
        const old = "vol/vol-20200101-000000-0a0a0a.tar.gz";
        const foreign = "vol/vol-20200101-000000.tar.gz";
        writeFileSync(path.join(local, old), "x");
        writeFileSync(path.join(local, `${old}.manifest.json`), JSON.stringify(manifestFor(old, "x", { kind: "kx-backup/archive", format: "tar.gz", container: "tar.gz", counts: { method: "none" } })));
        writeFileSync(path.join(local, foreign), "someone else's");
        const dir = path.join(work, "vol-src");
        mkdirSync(dir);
        writeFileSync(path.join(dir, "data"), "d");
        const r = await runCli(["archive", "--name", "vol", "--path", dir], { BACKUP_LOCAL_DIR: local, BACKUP_RETENTION_DAYS: "28", BACKUP_KEEP_MIN: "1" });
        expect(r.code, r.stderr).toBe(0);
        expect(existsSync(path.join(local, old))).toBe(false);
        expect(existsSync(path.join(local, foreign))).toBe(true);
        expect(readdirSync(path.join(local, "vol")).filter((f) => f.endsWith(".tar.gz"))).toHaveLength(2);
    });
});
