/**
 * The table of contents of a dump on disk, read without pg_restore and without reading the data:
 * a custom-format file, a dump directory, or the tar of one (`.dump.tar`, as kx-backup stores
 * the directory format). For `adopt` (checking a dump kx-backup did not write) and for restore's
 * `--tables` (which names the dump holds). Reads only the head of the file.
 */
import { createReadStream, promises as fs } from "fs";
import * as path from "path";
import type { TocEntry } from "../manifest";
import { TarHeaderReader } from "../tar";
import { ArchiveHeader, ArchiveToc, DumpFormatError, manifestToc, NeedMoreData, parseArchiveToc } from "./archive";
import { TocCollector } from "./custom";

export interface DumpToc {
    /** What the file is: a custom-format archive, a dump directory, or a tar of one. */
    container: "custom" | "directory" | "tar";
    header: ArchiveHeader;
    entries: TocEntry[];
    /** Tables whose data the dump holds (TABLE DATA entries), in dump order. */
    dataTables: { schema: string; name: string }[];
}

function describe(container: DumpToc["container"], toc: ArchiveToc): DumpToc {
    return {
        container,
        header: toc.header,
        entries: manifestToc(toc.entries),
        dataTables: toc.entries.filter((e) => e.desc === "TABLE DATA").map((e) => ({ schema: e.schema, name: e.name })),
    };
}

function parseWhole(buf: Buffer, where: string): ArchiveToc {
    try {
        return parseArchiveToc(buf);
    } catch (e) {
        if (e instanceof NeedMoreData) {
            throw new DumpFormatError(`${where} ends inside its table of contents: the dump is incomplete`);
        }
        throw e;
    }
}

/** Streams `file` into `onChunk` until it returns a result (the rest is not read). */
async function readUntil<T>(file: string, onChunk: (chunk: Buffer) => T | undefined): Promise<T | undefined> {
    const stream = createReadStream(file, { highWaterMark: 256 * 1024 });
    try {
        for await (const chunk of stream) {
            const got = onChunk(chunk as Buffer);
            if (got !== undefined) {
                return got;
            }
        }
        return undefined;
    } finally {
        stream.destroy();
    }
}

/** Reads the table of contents of the dump at `file` (a custom-format file, a dump directory or its tar). */
export async function readDumpToc(file: string): Promise<DumpToc> {
    const st = await fs.stat(file);
    if (st.isDirectory()) {
        const tocPath = path.join(file, "toc.dat");
        const buf = await fs.readFile(tocPath).catch(() => {
            throw new DumpFormatError(`${file} has no toc.dat: not a pg_dump directory`);
        });
        return describe("directory", parseWhole(buf, tocPath));
    }
    const handle = await fs.open(file, "r");
    const head = Buffer.alloc(512);
    let read: number;
    try {
        read = (await handle.read(head, 0, 512, 0)).bytesRead;
    } finally {
        await handle.close();
    }
    if (read >= 5 && head.subarray(0, 5).toString("latin1") === "PGDMP") {
        const collector = new TocCollector();
        const toc = (await readUntil(file, (chunk) => collector.push(chunk)?.toc)) ?? collector.push(Buffer.alloc(0), true)?.toc;
        if (!toc) {
            throw new DumpFormatError(`${file} ends inside its table of contents: the dump is incomplete`);
        }
        return describe("custom", toc);
    }
    if (read === 512 && head.subarray(257, 262).toString("latin1") === "ustar") {
        let parts: Buffer[] | undefined;
        let done: Buffer | undefined;
        const tar = new TarHeaderReader({
            entry: (e) => {
                parts = e.type === "file" && e.name.replace(/^(\.\/)+/, "") === "toc.dat" ? [] : undefined;
            },
            data: (chunk) => parts?.push(Buffer.from(chunk)),
            fileEnd: () => {
                if (parts) {
                    done = Buffer.concat(parts);
                    parts = undefined;
                }
            },
        });
        const buf = await readUntil(file, (chunk) => {
            tar.push(chunk);
            return done;
        });
        if (!buf) {
            throw new DumpFormatError(`${file} is a tar without toc.dat: not a pg_dump directory archive`);
        }
        return describe("tar", parseWhole(buf, `toc.dat in ${file}`));
    }
    throw new DumpFormatError(`${file} is not a custom-format or directory-format dump (a plain SQL dump has no table of contents)`);
}
