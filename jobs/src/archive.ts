/**
 * `kx-backup archive`: directories (volumes, exported configuration) as compressed tars on the
 * same targets, with the same naming, manifest, retention and prune as database dumps. The tar is
 * made by GNU tar (symlinks, modes, empty directories and any file name survive) and streamed
 * through the same fan-out. `restore-archive` is in restore/archive.ts.
 */
import { spawn } from "child_process";
import { createHash } from "crypto";
import { createReadStream, promises as fs } from "fs";
import * as path from "path";
import { listBackups } from "./catalog";
import { commitManifest, streamToTargets } from "./commit";
import { failureLine, formatBytes, formatDuration, JobError, Logger } from "./log";
import { Manifest, MANIFEST_KIND_ARCHIVE, readManifest } from "./manifest";
import { backupKey } from "./naming";
import { Target } from "./targets";

export interface TreeSummary {
    files: number;
    totalBytes: number;
    /** sha256 over every entry's path, type, mode, link target and content, in a fixed order. */
    contentHash: string;
}

/** Walks a tree in a stable order and hashes what a restore would recreate (not mtimes). */
export async function summarizeTree(root: string): Promise<TreeSummary> {
    const hash = createHash("sha256");
    let files = 0;
    let totalBytes = 0;
    const walk = async (rel: string): Promise<void> => {
        const entries = (await fs.readdir(path.join(root, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (const e of entries) {
            const relPath = rel ? `${rel}/${e.name}` : e.name;
            const full = path.join(root, relPath);
            const st = await fs.lstat(full);
            const mode = (st.mode & 0o7777).toString(8);
            if (st.isSymbolicLink()) {
                hash.update(`L\0${relPath}\0${await fs.readlink(full)}\0`);
            } else if (st.isDirectory()) {
                hash.update(`D\0${relPath}\0${mode}\0`);
                await walk(relPath);
            } else if (st.isFile()) {
                files++;
                totalBytes += st.size;
                hash.update(`F\0${relPath}\0${mode}\0${st.size}\0`);
                for await (const chunk of createReadStream(full)) {
                    hash.update(chunk as Buffer);
                }
            }
        }
    };
    await walk("");
    return { files, totalBytes, contentHash: hash.digest("hex") };
}

export interface ArchiveOptions {
    name: string;
    dir: string;
    ifChanged: boolean;
    /** BACKUP_SIGNING_KEY: signs the manifest. */
    signingKey?: string;
    now?: Date;
}

export interface ArchiveResult {
    skipped: boolean;
    key?: string;
    manifest?: Manifest;
}

const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

export async function runArchive(o: ArchiveOptions, targets: Target[], log: Logger): Promise<ArchiveResult> {
    if (!NAME.test(o.name)) {
        throw new JobError(`--name ${o.name}: use lowercase letters, digits, . _ - (it becomes the folder and file name)`, 2);
    }
    const st = await fs.stat(o.dir).catch(() => undefined);
    if (!st?.isDirectory()) {
        throw new JobError(`--path ${o.dir} is not a directory`, 2);
    }
    const started = o.now ?? new Date();
    const tree = await summarizeTree(o.dir);
    if (o.ifChanged) {
        const same = await unchangedOn(targets, o.name, tree.contentHash);
        if (same) {
            log.info(`archive ${o.name}: unchanged since ${same} (content hash ${tree.contentHash.slice(0, 12)}…), nothing uploaded`, { event: "archive.unchanged", name: o.name, newest: same });
            return { skipped: true };
        }
    }
    const key = backupKey(undefined, o.name, started, "tar.gz");
    log.info(`archiving ${o.dir} as ${o.name}: ${tree.files} files, ${formatBytes(tree.totalBytes)}`, { event: "archive.start", name: o.name, key, targets: targets.map((t) => t.location) });
    const tar = spawn("tar", ["--create", "--gzip", "--file", "-", "--directory", o.dir, "--numeric-owner", "."], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    tar.stderr.on("data", (d) => (stderr += d));
    try {
        const streamed = await streamToTargets(tar.stdout, targets, {
            key,
            expectedBytes: tree.totalBytes,
            label: o.name,
            log,
            startedAt: started,
            alongside: [
                new Promise<void>((resolve, reject) =>
                    tar.once("close", (code) => (code === 0 ? resolve() : reject(new JobError(`tar of ${o.dir} failed: ${failureLine(stderr)}`)))),
                ),
            ],
            onFailure: () => tar.kill("SIGTERM"),
        });
        const finished = new Date();
        const manifest: Manifest = {
            kind: MANIFEST_KIND_ARCHIVE,
            manifestVersion: 2,
            database: o.name,
            key,
            locations: Object.fromEntries(targets.map((t) => [t.kind, `${t.location.replace(/\/+$/, "")}/${key}`])),
            scope: "full",
            purpose: "scheduled",
            format: "tar.gz",
            container: "tar.gz",
            options: { schemaOnly: false, dataOnly: false, tables: [], jobs: 1 },
            startedAt: started.toISOString(),
            finishedAt: finished.toISOString(),
            durationMs: finished.getTime() - started.getTime(),
            size: streamed.bytes,
            sha256: streamed.sha256,
            pgDump: { version: "" },
            server: { version: "", versionNum: 0 },
            tables: [],
            counts: { method: "none" },
            archive: { files: tree.files, totalBytes: tree.totalBytes, contentHash: tree.contentHash },
            targets: targets.map((t) => t.kind),
        };
        await commitManifest(targets, manifest, o.signingKey);
        log.info(`archive ${o.name} ok: ${formatBytes(manifest.size)} (${tree.files} files) in ${formatDuration(manifest.durationMs)} to ${manifest.targets.join(", ")}`, { event: "archive.done", name: o.name, key, bytes: manifest.size });
        return { skipped: false, key, manifest };
    } catch (e) {
        tar.kill("SIGTERM");
        throw e instanceof JobError ? e : new JobError(`archive of ${o.dir} failed: ${(e as Error).message}`);
    }
}

/** The newest complete archive's key when every target's newest has this content hash. */
async function unchangedOn(targets: Target[], name: string, contentHash: string): Promise<string | undefined> {
    let newestKey: string | undefined;
    for (const t of targets) {
        const newest = (await listBackups(t, name)).find((e) => e.complete);
        if (!newest) {
            return undefined;
        }
        const m = await readManifest(t, newest.key).catch(() => undefined);
        if (m?.archive?.contentHash !== contentHash) {
            return undefined;
        }
        newestKey = newest.key;
    }
    return newestKey;
}
