/**
 * The benchmark's report (pure): medians and ratios against plain pg_dump of the same runs,
 * including CPU on the job's side, so BENCHMARKS.md's figures come from one renderer.
 */
import { describe, expect, it } from "vitest";
import { median, nodeFlagsFromLog, phasesFromLog, report, ScaleResult } from "../jobs/dev/bench";
import { checkRanAsImage } from "../jobs/dev/nodeFlags";

const run = (ms: number, cpuMs: number, peakRssMiB?: number, extra = {}) => ({ ms, cpuMs, peakRssMiB, ...extra });
const phases = (dump: number, upload: number) => ({ phasesMs: { prepare: 100, dump, upload, globals: 40, manifest: 20 }, elsewhereCpuMs: { server: 3_000, s3: dump / 10, azure: 2_000 } });

describe("npm run bench's report", () => {
    const r: ScaleResult = {
        label: "620 MiB",
        plain: [10_000, 12_000, 11_000],
        plainCpu: [9_000, 9_500, 10_000],
        job: [run(11_000, 12_000, 130, phases(10_000, 800)), run(13_000, 13_000, 151, phases(12_000, 900)), run(12_100, 12_500, 140, phases(11_000, 700))],
        runbook: [14_000, 15_000, 16_000],
        dir: [run(9_000, 11_000, 120), run(10_000, 11_500, 125), run(9_500, 12_000, 122)],
        pgRestore: [4_000, 5_000, 6_000],
        verify: [4_400, 5_500, 6_600],
        restore: [4_000, 5_000, 6_000],
        reads: { plain: [1, 1, 1], job: [1, 1, 1] },
    };
    const lines = report([r]);

    it("takes medians, not means", () => {
        expect(median([3, 1, 2])).toBe(2);
        expect(median([4, 1, 3, 2])).toBe(2.5);
    });

    it("reports wall ratios and the highest peak RSS per variant", () => {
        expect(lines).toContain("| 620 MiB | 11.00 s | 12.10 s | 1.100 | 151 MiB | 15.00 s | 1.364 | 9.50 s | 0.864 | 125 MiB |");
    });

    it("reports CPU on the job's side against pg_dump's own", () => {
        expect(lines).toContain("| 620 MiB | 9.50 s | 12.50 s | 1.316 | 11.50 s | 1.211 |");
        expect(lines.join("\n")).toMatch(/CPU 9\.0 \/ 12\.0 \/ 11\.0.*\n?/);
    });

    it("reports kx-backup's phases and the CPU spent elsewhere meanwhile, as medians", () => {
        expect(lines).toContain("| 620 MiB | 11.00 s | 0.10 s | 11.00 s | 0.80 s | 0.04 s | 0.02 s | 3.00 s | 1.10 s | 2.00 s |");
    });

    it("reads the phases from kx-backup's JSON log, and nothing from a log without them", () => {
        const log = ['{"level":"info","event":"backup.start"}', '{"level":"info","event":"backup.done","phasesMs":{"prepare":120,"dump":18000}}'].join("\n");
        expect(phasesFromLog(log)).toEqual({ prepare: 120, dump: 18000 });
        expect(phasesFromLog('{"event":"backup.start"}\n')).toBeUndefined();
    });

    it("reports verify and restore against pg_restore -j2", () => {
        expect(lines).toContain("| 620 MiB | 1.00 | 1.00 | 5.00 s | 5.50 s | 1.100 | 5.00 s | 1.000 |");
    });

    it("reads how kx-backup was really run from its log, and refuses a run without the image's node flags", () => {
        const log = (flags: unknown) => [`{"level":"info","event":"backup.start","nodeFlags":${JSON.stringify(flags)}}`, '{"event":"backup.done"}'].join("\n");
        expect(nodeFlagsFromLog(log(["--max-semi-space-size=2", "--require", "/tmp/p.js"]))).toEqual(["--max-semi-space-size=2", "--require", "/tmp/p.js"]);
        expect(nodeFlagsFromLog('{"event":"backup.done"}\n')).toBeUndefined();
        expect(nodeFlagsFromLog(log("--x"))).toBeUndefined();
        expect(() => checkRanAsImage(["--max-semi-space-size=2", "--require", "/tmp/p.js"], ["--max-semi-space-size=2"])).not.toThrow();
        expect(() => checkRanAsImage(["--require", "/tmp/p.js"], ["--max-semi-space-size=2"])).toThrow(/without the image's --max-semi-space-size=2/);
        expect(() => checkRanAsImage(undefined, ["--max-semi-space-size=2"])).toThrow(/\[unknown\]/);
        expect(() => checkRanAsImage(undefined, [])).not.toThrow();
    });
});
