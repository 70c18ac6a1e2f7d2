/**
 * Review findings (r-zip, fixed): job-side compression with many small zlib streams in one batch.
 * CustomDumpReader asks its listener ready() only once per 512 KiB batch, so every table or
 * large object that starts and ends inside one batch is submitted at once; each takes a fresh
 * 1 MiB piece buffer, and every one of them is pooled afterwards for good.
 */
import { describe, expect, it } from "vitest";
import { PieceDeflater } from "../../jobs/src/dumpstream/zpieces";

describe("many small streams in one batch (as thousands of small large objects arrive)", () => {
    it("keeps the pieces in flight and pooled bounded by threads, not by streams per batch", async () => {
        const z = new PieceDeflater({ level: -1, threads: 2, pieceBytes: 1024 * 1024, frame: (p) => p, emit: () => undefined });
        const internals = z as unknown as { running: number; free: Buffer[] };
        let peak = 0;
        // One 512 KiB batch of 100-byte large objects: ~5000 streams, then one ready() as CustomDumpReader.push does.
        for (let i = 0; i < 5000; i++) {
            z.literal(Buffer.from([i & 0xff]));
            z.begin();
            z.write(Buffer.alloc(100, i & 0xff));
            z.end();
            peak = Math.max(peak, internals.running);
        }
        await z.ready();
        await z.flush();
        // "about threads + 1 ever exist" (zpieces.ts): here one per stream.
        expect(peak).toBeLessThanOrEqual(2 + 1);
        expect(internals.free.length).toBeLessThanOrEqual(2 + 1);
    });

    it("does not keep one pooled 1 MiB piece per small stream for the rest of the backup", async () => {
        const z = new PieceDeflater({ level: -1, threads: 2, pieceBytes: 1024 * 1024, frame: (p) => p, emit: () => undefined });
        for (let i = 0; i < 1000; i++) {
            z.begin();
            z.write(Buffer.alloc(2000, i & 0xff));
            z.end();
        }
        await z.ready();
        await z.flush();
        // Before the fix: 1000 buffers of 1 MiB stay in the pool (1000 MiB of arrayBuffers).
        expect((z as unknown as { free: Buffer[] }).free.length).toBeLessThanOrEqual(2 + 1);
    });
});
