/**
 * restore-archive against hostile and broken archives (each stored as a complete backup whose
 * manifest matches it, as anyone with write access to a bucket could make one): nothing outside
 * the directory, no device node or FIFO, no setuid bit, no owner unless asked, and nothing left
 * behind when the extraction fails.
 */
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { gzipSync } from "zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTarEntries, unsafeEntry } from "../../jobs/src/restore/archive";
import { logLines, runCli } from "../helpers/cli";

let work: string;
const LONG = `${"deeply-nested-directory-name/".repeat(4)}a-file-name-long-enough-to-need-gnu-long-names.txt`;

beforeAll(() => {
    work = mkdtempSync(path.join(os.tmpdir(), "kx-restore-archive-"));
});

afterAll(() => {
    rmSync(work, { recursive: true, force: true });
});

interface EntryOptions {
    type?: "0" | "1" | "2" | "3" | "4" | "5" | "6";
    body?: string;
    link?: string;
    mode?: number;
    uid?: number;
}

/** A tar entry written by hand, to make archives GNU tar would not. */
function tarEntry(name: string, opts: EntryOptions = {}): Buffer {
    const body = Buffer.from(opts.body ?? "");
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, "utf8");
    h.write(`${(opts.mode ?? (opts.type === "5" ? 0o755 : 0o644)).toString(8).padStart(7, "0")}\0`, 100);
    h.write(`${(opts.uid ?? 0).toString(8).padStart(7, "0")}\0`, 108);
    h.write(`${(opts.uid ?? 0).toString(8).padStart(7, "0")}\0`, 116);
    h.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
    h.write("00000000000\0", 136);
    h.write(opts.type ?? "0", 156);
    h.write(opts.link ?? "", 157, 100, "utf8");
    h.write("ustar\u000000", 257);
    if (opts.type === "3" || opts.type === "4") {
        h.write("0000001\0", 329);
        h.write("0000003\0", 337);
    }
    h.fill(0x20, 148, 156);
    const sum = h.reduce((a, b) => a + b, 0);
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

function tarOf(...entries: Buffer[]): Buffer {
    return Buffer.concat([...entries, Buffer.alloc(1024)]);
}

/** Stores a crafted archive as a complete backup (manifest sha256 matching) on a fresh local target. */
function plant(tar: Buffer, name = "evil"): string {
    const local = mkdtempSync(path.join(work, "target-"));
    const gz = gzipSync(tar);
    const key = `${name}/${name}-20260101-000000.tar.gz`;
    mkdirSync(path.join(local, name), { recursive: true });
    writeFileSync(path.join(local, key), gz);
    writeFileSync(path.join(local, `${key}.manifest.json`), JSON.stringify({
        kind: "kx-backup/archive", manifestVersion: 1, database: name, key, format: "tar.gz", container: "tar.gz",
        size: gz.length, sha256: createHash("sha256").update(gz).digest("hex"), tables: {}, targets: ["local"],
    }));
    return local;
}

async function restoreArchive(local: string, into: string, ...flags: string[]) {
    const r = await runCli(["restore-archive", "--name", "evil", "--into", into, ...flags], { BACKUP_LOCAL_DIR: local });
    return { ...r, error: logLines(r.stderr).find((l) => l.level === "error")?.msg as string | undefined, warning: logLines(r.stderr).find((l) => l.level === "warn" && l.event === "restore-archive.special-bits")?.msg as string | undefined };
}

describe("unsafe archives are refused before anything is extracted", () => {
    it.each([
        ["a ../ path", tarOf(tarEntry("ok.txt", { body: "fine" }), tarEntry("../escaped.txt", { body: "evil" })), /entry "..\/escaped.txt" escapes the target directory/],
        ["an absolute path", tarOf(tarEntry("/tmp/kx-absolute-evil.txt", { body: "evil" })), /escapes the target directory/],
        ["a write through a symlink", tarOf(tarEntry("link", { type: "2", link: "/tmp" }), tarEntry("link/kx-through-link.txt", { body: "evil" })), /would be written through the symlink link/],
        ["a character device", tarOf(tarEntry("ok.txt", { body: "fine" }), tarEntry("mem", { type: "3" })), /entry "mem" is a char device/],
        ["a block device", tarOf(tarEntry("disk", { type: "4" })), /entry "disk" is a block device/],
        ["a FIFO", tarOf(tarEntry("pipe", { type: "6" })), /entry "pipe" is a FIFO/],
    ])("%s", async (_what, tar, message) => {
        const local = plant(tar);
        const into = path.join(local, "into");
        const r = await restoreArchive(local, into);
        expect(r.code).toBe(1);
        expect(r.error).toMatch(message);
        expect(r.error).toMatch(/nothing was extracted/);
        expect(existsSync(into)).toBe(false);
        expect(existsSync(path.join(local, "escaped.txt"))).toBe(false);
        expect(existsSync("/tmp/kx-absolute-evil.txt")).toBe(false);
        expect(existsSync("/tmp/kx-through-link.txt")).toBe(false);
    });
});

describe("what is extracted", () => {
    it("strips setuid, setgid and sticky bits, with a warning", async () => {
        const local = plant(tarOf(
            tarEntry("bin/", { type: "5" }),
            tarEntry("bin/su-like", { body: "#!/bin/sh\n", mode: 0o4755 }),
            tarEntry("bin/sg-like", { body: "x", mode: 0o2750 }),
            tarEntry("tmp/", { type: "5", mode: 0o1777 }),
            tarEntry("plain.txt", { body: "p", mode: 0o640 }),
        ));
        const into = path.join(local, "into");
        const r = await restoreArchive(local, into);
        expect(r.code, r.stderr).toBe(0);
        expect(r.warning).toMatch(/stripped setuid\/setgid\/sticky bits from 3 entries: bin\/su-like, bin\/sg-like, tmp\//);
        expect(lstatSync(path.join(into, "bin", "su-like")).mode & 0o7777).toBe(0o755);
        expect(lstatSync(path.join(into, "bin", "sg-like")).mode & 0o7777).toBe(0o750);
        expect(lstatSync(path.join(into, "tmp")).mode & 0o7777).toBe(0o777);
        expect(lstatSync(path.join(into, "plain.txt")).mode & 0o7777).toBe(0o640);
        expect(readdirSync(into).sort()).toEqual(["bin", "plain.txt", "tmp"]);
    });

    it.runIf(process.getuid?.() === 0)("keeps the archive's owners only with --same-owner", async () => {
        const local = plant(tarOf(tarEntry("owned.txt", { body: "o", uid: 4242 })));
        const plain = path.join(local, "plain");
        expect((await restoreArchive(local, plain)).code).toBe(0);
        expect(lstatSync(path.join(plain, "owned.txt")).uid).toBe(0);
        const same = path.join(local, "same");
        expect((await restoreArchive(local, same, "--same-owner")).code).toBe(0);
        expect(lstatSync(path.join(same, "owned.txt")).uid).toBe(4242);
    });

    it("removes what it extracted when tar fails half-way, a symlink to /etc included", async () => {
        // "a" is a file, then "a/b" needs it to be a directory: tar extracts the rest and exits non-zero.
        const tar = tarOf(
            tarEntry("etc", { type: "2", link: "/etc" }),
            tarEntry("data.txt", { body: "data" }),
            tarEntry("a", { body: "file" }),
            tarEntry("a/b", { body: "cannot" }),
            tarEntry("z.txt", { body: "late" }),
        );
        const local = plant(tar);
        const fresh = path.join(local, "fresh");
        const r = await restoreArchive(local, fresh);
        expect(r.code).toBe(1);
        expect(r.error).toMatch(/extracting evil\/evil-20260101-000000\.tar\.gz failed: .*Not a directory.*; .*fresh was left as it was/);
        expect(existsSync(fresh)).toBe(false);

        // Over an existing directory (--force): exactly what was there before.
        const occupied = path.join(local, "occupied");
        mkdirSync(occupied);
        writeFileSync(path.join(occupied, "keep.txt"), "mine");
        symlinkSync("keep.txt", path.join(occupied, "data.txt"));
        const again = await restoreArchive(local, occupied, "--force");
        expect(again.code).toBe(1);
        expect(readdirSync(occupied).sort()).toEqual(["data.txt", "keep.txt"]);
        expect(readFileSync(path.join(occupied, "data.txt"), "utf8")).toBe("mine");
    });

    it("extracts over a directory with --force, replacing what the archive holds and keeping the rest", async () => {
        const local = plant(tarOf(tarEntry("conf/", { type: "5" }), tarEntry("conf/new.yml", { body: "new" }), tarEntry("top.txt", { body: "archive" })));
        const into = path.join(local, "into");
        mkdirSync(path.join(into, "conf"), { recursive: true });
        writeFileSync(path.join(into, "conf", "old.yml"), "old");
        writeFileSync(path.join(into, "top.txt"), "mine");
        const r = await restoreArchive(local, into, "--force");
        expect(r.code, r.stderr).toBe(0);
        expect(readdirSync(path.join(into, "conf")).sort()).toEqual(["new.yml", "old.yml"]);
        expect(readFileSync(path.join(into, "top.txt"), "utf8")).toBe("archive");
        expect(readdirSync(into).filter((f) => f.startsWith(".kx-"))).toEqual([]);
    });
});

describe("tar headers", () => {
    it("reads GNU long names, non-ASCII names, symlinks, directories and modes", () => {
        const tree = path.join(work, "tree");
        mkdirSync(path.join(tree, path.dirname(LONG)), { recursive: true });
        mkdirSync(path.join(tree, "config", "empty-dir"), { recursive: true });
        writeFileSync(path.join(tree, LONG), "long");
        writeFileSync(path.join(tree, "Ünïcødé 文件 ✓.txt"), "x", { mode: 0o600 });
        symlinkSync("config", path.join(tree, "current"));
        const entries = parseTarEntries(execFileSync("tar", ["--create", "--file", "-", "--directory", tree, "."], { maxBuffer: 64 * 1024 * 1024 }));
        expect(entries).toContainEqual(expect.objectContaining({ name: `./${LONG}`, type: "file", linkname: "" }));
        expect(entries).toContainEqual({ name: "./Ünïcødé 文件 ✓.txt", type: "file", linkname: "", mode: 0o600 });
        expect(entries).toContainEqual(expect.objectContaining({ name: "./current", type: "symlink", linkname: "config" }));
        expect(entries).toContainEqual(expect.objectContaining({ name: "./config/empty-dir/", type: "directory" }));
        expect(unsafeEntry(entries)).toBeUndefined();
    });

    it("accepts a symlink pointing elsewhere when nothing is written through it", () => {
        expect(unsafeEntry([{ name: "l", type: "symlink", linkname: "/etc", mode: 0o777 }, { name: "x", type: "file", linkname: "", mode: 0o644 }])).toBeUndefined();
        expect(unsafeEntry([{ name: "h", type: "hardlink", linkname: "../../etc/passwd", mode: 0o644 }])).toMatch(/hard link/);
    });
});
