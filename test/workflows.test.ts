/** The GitHub workflows cannot run here: check their essentials instead. */
import { readFileSync } from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT } from "./helpers/pulumiMocks";

const load = (name: string) => parse(readFileSync(path.join(ROOT, ".github", "workflows", name), "utf8"));
const steps = (wf: any) => Object.values(wf.jobs).flatMap((j: any) => j.steps ?? []);
const pulumiSteps = (wf: any) => steps(wf).filter((s: any) => String(s.uses ?? "").startsWith("pulumi/actions@"));

describe.each(["preview.yml", "deploy.yml"])("%s", (name) => {
    const wf = load(name);

    it("pins every action to an explicit version", () => {
        const uses = steps(wf).map((s: any) => s.uses).filter(Boolean);
        expect(uses.length).toBeGreaterThan(0);
        for (const u of uses) {
            expect(u).toMatch(/^[\w.-]+\/[\w.-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$/);
        }
    });

    it("grants read-only contents by default and OIDC only where needed", () => {
        expect(wf.permissions).toEqual({ contents: "read" });
        for (const job of Object.values(wf.jobs) as any[]) {
            if (pulumiSteps({ jobs: { job } }).length > 0) {
                expect(job.permissions["id-token"]).toBe("write");
            }
        }
    });

    it("runs pulumi with the local policy pack and the stack's pack config", () => {
        for (const s of pulumiSteps(wf) as any[]) {
            expect(s.with.policyPacks).toBe("policies");
            expect(s.with.policyPackConfigs).toMatch(/^policies\/config\.(\$\{\{ matrix\.stack \}\}|dev|prod)\.json$/);
            expect(s.env.PULUMI_ACCESS_TOKEN).toBe("${{ secrets.PULUMI_ACCESS_TOKEN }}");
        }
    });

    it("commits no credentials", () => {
        const text = readFileSync(path.join(ROOT, ".github", "workflows", name), "utf8");
        expect(text).not.toMatch(/AKIA[0-9A-Z]{16}|aws_secret_access_key|AccountKey=/i);
    });
});

describe("preview.yml", () => {
    const wf = load("preview.yml");
    it("runs on pull requests: tests, then previews dev and prod, commented on the PR", () => {
        expect(Object.keys(wf.on)).toEqual(["pull_request"]);
        expect(steps({ jobs: { t: wf.jobs.test } }).some((s: any) => s.run === "bash .ci/run")).toBe(true);
        expect(wf.jobs.preview.needs).toBe("test");
        expect(wf.jobs.preview.strategy.matrix.stack).toEqual(["dev", "prod"]);
        const p = pulumiSteps(wf)[0] as any;
        expect(p.with.command).toBe("preview");
        expect(p.with["comment-on-pr"]).toBe(true);
        expect(wf.jobs.preview.permissions["pull-requests"]).toBe("write");
    });
});

describe("deploy.yml", () => {
    const wf = load("deploy.yml");
    it("runs on pushes to main: up for dev, then prod behind a protected environment", () => {
        expect(wf.on).toEqual({ push: { branches: ["main"] } });
        expect((pulumiSteps({ jobs: { d: wf.jobs.dev } })[0] as any).with).toMatchObject({ command: "up", "stack-name": expect.stringMatching(/\/dev$/) });
        expect(wf.jobs.prod.needs).toBe("dev");
        expect(wf.jobs.prod.environment).toBe("production");
        expect((pulumiSteps({ jobs: { p: wf.jobs.prod } })[0] as any).with).toMatchObject({ command: "up", "stack-name": expect.stringMatching(/\/prod$/) });
    });
});
