import { createReadStream, createWriteStream, mkdirSync, promises as fs } from "fs";
import * as path from "path";
import { Readable } from "stream";
import { finished } from "stream/promises";
import { StoredObject, Target, Upload } from "./target";

/** Suffix of a file still being written; renamed away only once it is complete and synced. */
export const PARTIAL_SUFFIX = ".partial";

/** A directory target: the PVC in the pod, any directory on a Docker Compose host. */
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

    upload(key: string): Upload {
        const final = this.file(key);
        const partial = `${final}${PARTIAL_SUFFIX}`;
        mkdirSync(path.dirname(final), { recursive: true });
        const sink = createWriteStream(partial, { flags: "wx" });
        let aborted = false;
        const completion = (async () => {
            await finished(sink);
            if (aborted) {
                throw new Error("aborted");
            }
            const handle = await fs.open(partial, "r");
            try {
                await handle.sync();
            } finally {
                await handle.close();
            }
            await fs.rename(partial, final);
        })();
        completion.catch(() => undefined);
        return {
            sink,
            done: () => completion,
            abort: async (reason?: Error) => {
                aborted = true;
                sink.destroy(reason ?? new Error("upload aborted"));
                await completion.catch(() => undefined);
                await fs.rm(partial, { force: true });
                await fs.rm(final, { force: true }).catch(() => undefined);
            },
        };
    }

    async putSmall(key: string, body: string): Promise<void> {
        const final = this.file(key);
        await fs.mkdir(path.dirname(final), { recursive: true });
        const partial = `${final}${PARTIAL_SUFFIX}`;
        await fs.writeFile(partial, body, { flush: true } as Parameters<typeof fs.writeFile>[2]);
        await fs.rename(partial, final);
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
                if ((e as NodeJS.ErrnoException).code === "ENOENT") {
                    return;
                }
                throw e;
            }
            for (const entry of entries) {
                const key = `${rel}${entry.name}`;
                if (entry.isDirectory()) {
                    await walk(`${key}/`);
                } else if (entry.isFile() && key.startsWith(prefix)) {
                    const st = await fs.stat(path.join(this.root, key)).catch(() => undefined);
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
        return createReadStream(file);
    }

    async delete(key: string): Promise<void> {
        await fs.rm(this.file(key), { force: true });
    }
}
