import { createReadStream, promises as fs } from "fs";
import type { FileHandle } from "fs/promises";
import * as path from "path";
import { Readable, Writable } from "stream";
import { finished } from "stream/promises";
import { shutdownSignal } from "../shutdown";
import { stagedUpload } from "./staged";

/** Bytes per read when a stored object is read back (get). */
export const READ_CHUNK = 1024 * 1024;
import { DeleteOutcome, ObjectExistsError, PutOptions, StoredObject, Target, Upload, UploadOptions } from "./target";

/** Suffix of a file still being written; published under its final name only once complete and synced. */
export const PARTIAL_SUFFIX = ".partial";

/** Backups hold the whole database: readable by the job's user only. */
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/** link() is refused by some filesystems (SMB shares, FAT): then a placeholder reserves the name. */
const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV", "EMLINK"]);

function code(e: unknown): string | undefined {
    return (e as NodeJS.ErrnoException)?.code;
}

/** A directory target: the PVC in the pod, any directory on a Docker Compose host. No versions: a deleted file is gone. */
export class LocalTarget implements Target {
    readonly kind = "local";
    readonly location: string;

    constructor(private readonly root: string) {
        this.location = `file://${path.resolve(root)}`;
    }

    private file(key: string): string {
        const full = path.resolve(this.root, key);
        if (!full.startsWith(path.resolve(this.root) + path.sep)) {
            throw new Error(`key ${key} escapes ${this.root}`);
        }
        return full;
    }

    /**
     * Publishes a finished, synced file under its final name without ever replacing one:
     * link() fails with EEXIST when the name is taken (rename() would silently replace it).
     */
    private async publish(partial: string, final: string, key: string, onVisible: () => void = () => undefined): Promise<void> {
        try {
            await fs.link(partial, final);
            onVisible();
        } catch (e) {
            if (code(e) === "EEXIST") {
                throw new ObjectExistsError(this.location, key);
            }
            if (!NO_HARD_LINKS.has(code(e) ?? "")) {
                throw e;
            }
            // Reserve the name exclusively, then move the file over our own placeholder.
            const placeholder = await fs.open(final, "wx", FILE_MODE).catch((err) => {
                throw code(err) === "EEXIST" ? new ObjectExistsError(this.location, key) : err;
            });
            await placeholder.close();
            onVisible();
            await fs.rename(partial, final);
            await syncDir(path.dirname(final));
            return;
        }
        await fs.unlink(partial);
        await syncDir(path.dirname(final));
    }

    upload(key: string, o: UploadOptions): Upload {
        const final = this.file(key);
        const partial = `${final}${PARTIAL_SUFFIX}`;
        let handle: FileHandle | undefined;
        let created = false;
        // Set the moment the final name is ours, even if what follows (unlink, fsync) fails.
        let visible = false;
        const location = this.location;
        const sink = new Writable({
            highWaterMark: 1024 * 1024,
            construct(cb) {
                (async () => {
                    await fs.mkdir(path.dirname(final), { recursive: true, mode: DIR_MODE });
                    handle = await fs.open(partial, "wx", FILE_MODE).catch((e) => {
                        throw code(e) === "EEXIST" ? new ObjectExistsError(location, `${key}${PARTIAL_SUFFIX}`, "another run is writing it, or left it") : e;
                    });
                    created = true;
                })().then(() => cb(), cb);
            },
            writev(chunks, cb) {
                handle!.writev(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
            },
            final(cb) {
                (async () => {
                    await handle!.sync();
                    await handle!.close();
                    handle = undefined;
                })().then(() => cb(), cb);
            },
            destroy(err, cb) {
                const h = handle;
                handle = undefined;
                (h ? h.close() : Promise.resolve()).then(() => cb(err), () => cb(err));
            },
        });
        const staged = finished(sink);
        staged.catch(() => undefined);
        const upload = stagedUpload({
            sink,
            staged,
            signal: o.signal ?? shutdownSignal,
            publish: () => this.publish(partial, final, key, () => (visible = true)),
            unpublish: () => removeOwn(),
            unstage: () => removeOwn(),
        });
        // Only what this upload created: its .partial, and the final name once it made it.
        const removeOwn = async (): Promise<void> => {
            if (visible) {
                await fs.rm(final, { force: true });
            }
            if (created) {
                await fs.rm(partial, { force: true });
            }
        };
        return upload;
    }

    async putSmall(key: string, body: string, o: PutOptions = {}): Promise<void> {
        const final = this.file(key);
        await fs.mkdir(path.dirname(final), { recursive: true, mode: DIR_MODE });
        const partial = `${final}${PARTIAL_SUFFIX}`;
        const handle = await fs.open(partial, "wx", FILE_MODE).catch((e) => {
            throw code(e) === "EEXIST" ? new ObjectExistsError(this.location, `${key}${PARTIAL_SUFFIX}`, "another run is writing it, or left it") : e;
        });
        try {
            try {
                await handle.writeFile(body);
                await handle.sync();
            } finally {
                await handle.close();
            }
            if (o.replace) {
                await fs.rename(partial, final);
                await syncDir(path.dirname(final));
            } else {
                await this.publish(partial, final, key);
            }
        } finally {
            await fs.rm(partial, { force: true });
        }
    }

    async list(prefix: string): Promise<StoredObject[]> {
        // Walk from the deepest directory the prefix names, then keep keys that start with it.
        const dirPart = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/") + 1) : "";
        const out: StoredObject[] = [];
        const walk = async (rel: string): Promise<void> => {
            let entries: import("fs").Dirent[];
            try {
                entries = await fs.readdir(path.join(this.root, rel), { withFileTypes: true });
            } catch (e) {
                if (code(e) === "ENOENT") {
                    return;
                }
                throw e;
            }
            for (const entry of entries) {
                const key = `${rel}${entry.name}`;
                if (entry.isDirectory()) {
                    await walk(`${key}/`);
                } else if (entry.isFile() && key.startsWith(prefix)) {
                    // Gone since readdir (a prune, a failed run's cleanup): not listed. Any other
                    // failure (EACCES on a directory readable but not searchable) fails the listing:
                    // dropping the file would make it look like nothing is there.
                    const st = await fs.stat(path.join(this.root, key)).catch((e) => {
                        if (code(e) === "ENOENT") {
                            return undefined;
                        }
                        throw e;
                    });
                    if (st) {
                        out.push({ key, size: st.size, lastModified: st.mtime });
                    }
                }
            }
        };
        await walk(dirPart);
        return out;
    }

    async get(key: string): Promise<Readable> {
        const file = this.file(key);
        await fs.access(file);
        // 1 MiB reads: a verify or restore hashes and copies the whole dump before using it, and
        // with the default 64 KiB chunks that copy ran at half the speed (measured: 300 MB in 0.75 s
        // against 0.35 s), every chunk paying the stream machinery and a thread-pool round trip.
        return createReadStream(file, { highWaterMark: READ_CHUNK });
    }

    async delete(key: string): Promise<DeleteOutcome> {
        try {
            await fs.unlink(this.file(key));
            return { result: "deleted" };
        } catch (e) {
            if (code(e) === "ENOENT") {
                return { result: "absent" };
            }
            throw e;
        }
    }
}

/** Makes a directory entry change (a new link, a removed name) durable. */
async function syncDir(dir: string): Promise<void> {
    const d = await fs.open(dir, "r");
    try {
        await d.sync();
    } catch (e) {
        // Some filesystems refuse fsync on a directory; the file itself is already synced.
        if (code(e) !== "EINVAL" && code(e) !== "EISDIR") {
            throw e;
        }
    } finally {
        await d.close();
    }
}
