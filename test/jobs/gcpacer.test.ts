/**
 * Review finding (r-zip, fixed): GcPacer's "full" collection. On Node 20 (V8 11.3) the gc extension
 * treats any argument object as a young-generation request: gc({ type: "major" }) runs a
 * Scavenge, never a Mark-Compact, so the full collections the pacer (and the recompressing
 * worker, every 1 MiB) relies on do not happen.
 */
import { constants, PerformanceObserver } from "perf_hooks";
import { describe, expect, it } from "vitest";
import { GcPacer } from "../../jobs/src/gcpacer";

async function gcKinds(fn: () => void): Promise<number[]> {
    const kinds: number[] = [];
    const obs = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
            kinds.push((e as unknown as { detail: { kind: number } }).detail.kind);
        }
    });
    obs.observe({ entryTypes: ["gc"] });
    fn();
    await new Promise((r) => setTimeout(r, 100));
    obs.disconnect();
    return kinds;
}

describe("GcPacer", () => {
    it("runs a full (mark-compact) collection when majorEvery bytes have passed", async () => {
        const pacer = new GcPacer(1024, 4096);
        const kinds = await gcKinds(() => pacer.add(4096));
        expect(kinds).toContain(constants.NODE_PERFORMANCE_GC_MAJOR);
    });
});
