/**
 * The pieces of job-side compression, without a database: Adler-32 and the zlib header as zlib
 * writes them, a zlib stream deflated in pieces that inflates to exactly its input whatever the
 * piece size, thread count or write sizes, and the archive header rewrite with its refusals.
 */
import { randomBytes } from "crypto";
import { deflateSync, inflateSync } from "zlib";
import { describe, expect, it } from "vitest";
import { OFFSET, readInt } from "../../jobs/src/dumpstream/archive";
import { archiveInt, ArchiveRecompressor, compressedHead } from "../../jobs/src/dumpstream/recompress";
import { adler32, PieceDeflater, zlibHeader } from "../../jobs/src/dumpstream/zpieces";
import type { ArchiveToc } from "../../jobs/src/dumpstream/archive";

/** Text that compresses like COPY data, with a seed so runs differ. */
function copyText(bytes: number, seed = 1): Buffer {
    const lines: string[] = [];
    let n = 0;
    for (let i = 0; n < bytes; i++) {
        const line = `${i * seed}\tBTC-USDT\t${(i * 7919 * seed) % 60000}.${i % 97}\tbuy\t2026-01-01 00:00:${i % 60}\t${(i * 2654435761 * seed).toString(16)}\n`;
        lines.push(line);
        n += line.length;
    }
    return Buffer.from(lines.join("")).subarray(0, bytes);
}

/** Writes `input` as `streams` zlib streams through a PieceDeflater, in writes of irregular sizes. */
async function deflateInPieces(inputs: Buffer[], o: { threads: number; pieceBytes: number; level?: number; seed?: number }): Promise<Buffer> {
    const out: Buffer[] = [];
    const z = new PieceDeflater({
        level: o.level ?? -1,
        threads: o.threads,
        pieceBytes: o.pieceBytes,
        frame: (parts) => [Buffer.from(`<${parts.reduce((n, p) => n + p.length, 0)}>`), ...parts],
        emit: (b) => out.push(Buffer.from(b)),
    });
    let x = o.seed ?? 3;
    const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
    for (const [i, input] of inputs.entries()) {
        z.literal(Buffer.from(`[stream ${i}]`));
        z.begin();
        for (let at = 0; at < input.length; ) {
            const size = 1 + (next() % (next() % 2 ? 100 : 200_000));
            z.write(input.subarray(at, at + size));
            at += size;
            await z.ready();
        }
        z.end();
        z.literal(Buffer.from(`[end ${i}]`));
    }
    await z.flush();
    return Buffer.concat(out);
}

/** Splits deflateInPieces' output back into its zlib streams (the test framing: `<len>` then bytes). */
function streamsOf(out: Buffer): Buffer[] {
    const streams: Buffer[] = [];
    let at = 0;
    let current: Buffer[] | undefined;
    while (at < out.length) {
        const text = out.subarray(at, at + 32).toString("latin1");
        const literal = /^\[(stream|end) \d+\]/.exec(text);
        if (literal) {
            if (literal[1] === "stream") {
                current = [];
            } else {
                streams.push(Buffer.concat(current!));
                current = undefined;
            }
            at += literal[0].length;
            continue;
        }
        const m = /^<(\d+)>/.exec(text);
        if (!m || !current) {
            throw new Error(`unexpected bytes at ${at}`);
        }
        at += m[0].length;
        const len = Number(m[1]);
        expect(len).toBeGreaterThan(0); // an empty chunk would end pg_restore's read of the block
        current.push(out.subarray(at, at + len));
        at += len;
    }
    return streams;
}

describe("Adler-32 and the zlib header", () => {
    it("equal zlib's own, across continuation and the 5552-byte reduction boundary", () => {
        for (const size of [0, 1, 5551, 5552, 5553, 100_000, 1_000_003]) {
            const data = size % 2 ? randomBytes(size) : Buffer.alloc(size, 0xff);
            const z = deflateSync(data);
            expect(adler32(data)).toBe(z.readUInt32BE(z.length - 4));
            const cut = Math.floor(size / 3);
            expect(adler32(data.subarray(cut), adler32(data.subarray(0, cut)))).toBe(adler32(data));
        }
    });

    it("the header zlib writes, for every level", () => {
        for (const level of [-1, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
            expect(zlibHeader(level)).toEqual(deflateSync(Buffer.from("x"), { level }).subarray(0, 2));
        }
    });
});

describe("a zlib stream deflated in pieces", () => {
    const inputs = [copyText(3 * 1024 * 1024 + 17), Buffer.alloc(0), randomBytes(300_000), copyText(64 * 1024, 5), Buffer.alloc(200_000, "a")];

    it("inflates to exactly its input: compressible, random, empty, exact multiples of the piece", async () => {
        const out = await deflateInPieces(inputs, { threads: 3, pieceBytes: 64 * 1024 });
        const streams = streamsOf(out);
        expect(streams).toHaveLength(inputs.length);
        streams.forEach((s, i) => {
            // inflateSync checks the Adler-32 trailer, as pg_restore's inflate does.
            expect(inflateSync(s).equals(inputs[i])).toBe(true);
        });
        // An empty stream is a whole zlib stream, as pg_dump writes for an empty table.
        expect(inflateSync(streams[1]).length).toBe(0);
        expect(streams[1].subarray(0, 2)).toEqual(zlibHeader(-1));
    });

    it("is the same bytes whatever the threads and write sizes: order never depends on timing", async () => {
        const one = await deflateInPieces(inputs, { threads: 1, pieceBytes: 64 * 1024, seed: 11 });
        const four = await deflateInPieces(inputs, { threads: 4, pieceBytes: 64 * 1024, seed: 99 });
        expect(four.equals(one)).toBe(true);
    });

    it("compresses about as well as one zlib stream (the previous piece primes the next)", async () => {
        const text = copyText(4 * 1024 * 1024, 7);
        const [stream] = streamsOf(await deflateInPieces([text], { threads: 2, pieceBytes: 256 * 1024 }));
        const whole = deflateSync(text);
        expect(stream.length).toBeLessThan(whole.length * 1.02);
        // Without the dictionary every piece would start cold: measurably bigger.
        const cold = Array.from({ length: 16 }, (_, i) => deflateSync(text.subarray(i * 256 * 1024, (i + 1) * 256 * 1024))).reduce((n, b) => n + b.length, 0);
        expect(stream.length).toBeLessThan(cold);
    });

    it("hands each piece's output on in zlib's own buffers of at most 64 KiB, never joined into one of half the piece", async () => {
        const held: number[] = [];
        const z = new PieceDeflater({ level: 1, threads: 2, pieceBytes: 1024 * 1024, frame: (p) => (p.forEach((b) => held.push(b.buffer.byteLength)), p), emit: () => undefined });
        z.begin();
        z.write(randomBytes(2 * 1024 * 1024));
        z.end();
        await z.flush();
        expect(held.length).toBeGreaterThan(2 * 16);
        expect(Math.max(...held)).toBeLessThanOrEqual(64 * 1024);
    });

    it("a small piece's output holds a buffer of about its own size, not zlib's 64 KiB: thousands may wait behind a slow piece", async () => {
        // A 1 MiB piece first (two, with the 10 bytes after it), then small large objects whose
        // outputs wait for it. Buffers larger than Node's 8 KiB pool slab (which the 2-byte zlib
        // header may come from) are counted.
        let big = 0;
        let frames = 0;
        const z = new PieceDeflater({
            level: 9,
            threads: 2,
            pieceBytes: 1024 * 1024,
            frame: (p) => {
                frames++;
                big += p.filter((b) => b.buffer.byteLength > 8192).length;
                return p;
            },
            emit: () => undefined,
        });
        z.begin();
        z.write(copyText(1024 * 1024 + 10));
        z.end();
        for (let i = 0; i < 500; i++) {
            z.begin();
            z.write(randomBytes(150 + (i % 7) * 1000));
            z.end();
        }
        await z.flush();
        expect(frames).toBe(502);
        // Only the 1 MiB piece's output comes in zlib's large buffers (a handful of them).
        expect(big).toBeGreaterThan(0);
        expect(big).toBeLessThanOrEqual(8);
    });

    it("refuses misuse instead of writing a broken stream", async () => {
        const z = new PieceDeflater({ level: 6, threads: 1, pieceBytes: 64 * 1024, frame: (p) => p, emit: () => undefined });
        expect(() => z.end()).toThrow(/no zlib stream is open/);
        z.begin();
        expect(() => z.begin()).toThrow(/already open/);
        await expect(z.flush()).rejects.toThrow(/still open/);
        expect(() => new PieceDeflater({ level: 6, threads: 1, pieceBytes: 1000, frame: (p) => p, emit: () => undefined })).toThrow(/at least 32768/);
    });

    it("a failing deflate fails the stream, and nothing after it is written", async () => {
        const out: Buffer[] = [];
        // Level 42 is refused by zlib when the piece starts: the failure must surface, not vanish.
        const z = new PieceDeflater({ level: 42, threads: 2, pieceBytes: 64 * 1024, frame: (p) => p, emit: (b) => out.push(b) });
        z.begin();
        z.write(copyText(200_000));
        z.end();
        z.literal(Buffer.from("after"));
        await expect(z.flush()).rejects.toThrow(/compressing the dump failed/);
        expect(Buffer.concat(out).toString("latin1")).not.toContain("after");
    });
});

describe("the archive's header, rewritten", () => {
    const toc = (minor: number, over: Partial<ArchiveToc["header"]> = {}, dataState: number = OFFSET.POS_NOT_SET): ArchiveToc => ({
        header: { version: `1.${minor}.0`, minor, intSize: 4, offSize: 8, format: "custom", compression: "none", database: "d", serverVersion: "15", pgDumpVersion: "15", ...over },
        entries: [{ id: 1, desc: "TABLE DATA", schema: "public", name: "t", owner: "o", hadDumper: true, copyStmt: "COPY t FROM stdin;\n", dataState }],
        end: 40,
    });
    const head = () => {
        const b = Buffer.alloc(40, 0);
        b.write("PGDMP", 0, "latin1");
        return b;
    };

    it("archive 1.14 gets the zlib level as an int; 1.15+ the algorithm byte; nothing else changes", () => {
        const h14 = compressedHead(head(), toc(14), -1);
        expect(readInt(h14, 11, 4)).toBe(-1);
        expect(h14.subarray(16).equals(head().subarray(16))).toBe(true);
        const h16 = compressedHead(head(), toc(16), -1);
        expect(h16[11]).toBe(1);
        expect(h16.subarray(12).equals(head().subarray(12))).toBe(true);
    });

    it("refuses a compressed archive, one with data offsets, and other formats", () => {
        expect(() => compressedHead(head(), toc(14, { compression: "gzip" }), -1)).toThrow(/already gzip-compressed/);
        expect(() => compressedHead(head(), toc(14, {}, OFFSET.POS_SET), -1)).toThrow(/records data offsets \(entry 1\)/);
        expect(() => compressedHead(head(), toc(14, { format: "directory" }), -1)).toThrow(/only a custom-format archive/);
    });

    it("archive ints as WriteInt writes them, and what does not fit is refused", () => {
        for (const v of [0, 1, -1, 255, 256, 2 ** 31 - 1, -(2 ** 31 - 1)]) {
            expect(readInt(archiveInt(v, 4), 0, 4)).toBe(v);
        }
        expect(() => archiveInt(2 ** 32, 4)).toThrow(/does not fit/);
    });

    it("a level zlib would not write is refused up front", () => {
        for (const level of [0, 10, -2, 1.5]) {
            expect(() => new ArchiveRecompressor({ level, threads: 1, emit: () => undefined })).toThrow(/zlib level/);
        }
    });
});
