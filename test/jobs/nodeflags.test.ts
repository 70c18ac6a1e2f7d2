/**
 * The node flags kx-backup runs with: the image's ENTRYPOINT is their one source; `npm run
 * kx-backup` and the README's examples use the same, and the benchmark and the drill read them from
 * the Dockerfile (repositoryNodeFlags), so what is measured is what the image runs.
 */
import { execFileSync } from "child_process";
import { readFileSync } from "fs";
import path from "path";
import { describe, expect, it } from "vitest";
import { imageNodeFlags, repositoryNodeFlags } from "../../jobs/dev/nodeFlags";

const ROOT = path.join(__dirname, "..", "..");
const dockerfile = readFileSync(path.join(ROOT, "jobs", "Dockerfile"), "utf8");
const scripts = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

describe("kx-backup's node flags", () => {
    const flags = imageNodeFlags(dockerfile);

    it("the image keeps V8's young generation small (its garbage is Buffers outside the heap)", () => {
        expect(flags).toContain("--max-semi-space-size=2");
    });

    it("the image's build runs the bundle with them on the runtime's own node, so a flag it refuses fails the build", () => {
        const runtime = dockerfile.slice(dockerfile.indexOf("AS runtime"));
        const check = /^RUN node (.*) \/app\/kx-backup\.js --version$/m.exec(runtime);
        expect(check, "a RUN line in the runtime stage").not.toBeNull();
        expect(check![1].split(" ")).toEqual(flags);
    });

    it("npm run kx-backup runs with the image's flags", () => {
        expect(scripts["kx-backup"]).toBe(["node", ...flags, "dist/kx-backup.js"].join(" "));
    });

    it("the README runs kx-backup with them wherever it runs it with node", () => {
        const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
        const runs = readme.split("\n").filter((l) => /node(\.exe)?\b.*kx-backup\.js (backup|verify|restore)/.test(l));
        expect(runs.length).toBeGreaterThanOrEqual(3);
        for (const line of runs) {
            for (const flag of flags) {
                expect(line).toContain(flag);
            }
        }
    });

    it("the benchmark and the drill find them from where they run (dist/) and from their sources", () => {
        expect(repositoryNodeFlags(path.join(ROOT, "dist"))).toEqual(flags);
        expect(repositoryNodeFlags(path.join(ROOT, "jobs", "dev"))).toEqual(flags);
        expect(() => repositoryNodeFlags("/")).toThrow(/no jobs\/Dockerfile above/);
    });

    it("node accepts them, and they take effect: the young generation stays small under allocation", () => {
        // Objects that live a little while (as stream state does): V8 grows new space to its limit.
        const churn =
            "let max = 0; const keep = []; const v8 = require('v8');" +
            "for (let i = 0; i < 400000; i++) { keep.push({ a: i, b: [i, i, i] }); if (keep.length > 20000) keep.splice(0, 10000);" +
            "if (i % 1000 === 0) max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size); }" +
            "console.log(max)";
        const newSpace = (args: string[]) => Number(execFileSync(process.execPath, [...args, "-e", churn], { encoding: "utf8" }));
        const withFlags = newSpace(flags);
        const withoutFlags = newSpace([]);
        expect(withFlags).toBeGreaterThan(0);
        // New space is two semi-spaces at most.
        expect(withFlags).toBeLessThanOrEqual(2 * 2 * 1024 * 1024);
        expect(withoutFlags).toBeGreaterThan(2 * withFlags);
    });

    it("finds no flags where the ENTRYPOINT has none, and none without an ENTRYPOINT", () => {
        expect(imageNodeFlags('ENTRYPOINT ["node", "/app/kx-backup.js"]')).toEqual([]);
        expect(imageNodeFlags("FROM scratch\n")).toEqual([]);
        expect(imageNodeFlags('ENTRYPOINT ["/sbin/tini", "--", "node", "--a", "--b=1", "/app/kx-backup.js"]')).toEqual(["--a", "--b=1"]);
    });
});
