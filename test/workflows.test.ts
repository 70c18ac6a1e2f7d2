/** The GitHub workflows cannot run here: check their essentials instead. */
import { readFileSync } from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT } from "./helpers/pulumiMocks";
import { rawFrom } from "./helpers/stackFiles";

/** The kubeconfig context each stack file deploys to (kubernetes.context). */
const contextOf = (stack: string) => (rawFrom(`Pulumi.${stack}.yaml`, stack).values.kubernetes as { context: string }).context;

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

    it("gives every pulumi run the Azure provider's OIDC settings (ARM_USE_OIDC needs the client, tenant and subscription)", () => {
        for (const st of pulumiSteps(wf) as any[]) {
            expect(st.env).toMatchObject({
                ARM_USE_OIDC: "true",
                ARM_CLIENT_ID: "${{ secrets.AZURE_CLIENT_ID }}",
                ARM_TENANT_ID: "${{ secrets.AZURE_TENANT_ID }}",
                ARM_SUBSCRIPTION_ID: "${{ secrets.AZURE_SUBSCRIPTION_ID }}",
            });
        }
    });

    it("writes the stack's own kubeconfig context before every pulumi run, and points KUBECONFIG at it", () => {
        for (const [jobName, job] of Object.entries(wf.jobs) as [string, any][]) {
            const jobSteps: any[] = job.steps ?? [];
            const pulumiAt = jobSteps.findIndex((st) => String(st.uses ?? "").startsWith("pulumi/actions@"));
            if (pulumiAt < 0) {
                continue;
            }
            const kube = jobSteps.findIndex((st) => /aws eks update-kubeconfig/.test(st.run ?? ""));
            expect(kube, `${jobName}: kubeconfig step`).toBeGreaterThanOrEqual(0);
            expect(kube).toBeLessThan(pulumiAt);
            const run: string = jobSteps[kube].run;
            expect(run).toContain('echo "KUBECONFIG=$RUNNER_TEMP/kubeconfig" >> "$GITHUB_ENV"');
            expect(run).toMatch(/--kubeconfig "\$RUNNER_TEMP\/kubeconfig"/);
            expect(jobSteps[kube].env.EKS_CLUSTER_NAME).toBe("${{ vars.EKS_CLUSTER_NAME }}");
            // The alias is the context the stack file names, for each stack this job deploys.
            const alias = /--alias (.+?) --kubeconfig/.exec(run)![1];
            const stacks: string[] = job.strategy?.matrix?.stack ?? [/\/(\w+)$/.exec(jobSteps[pulumiAt].with["stack-name"])![1]];
            for (const stack of stacks) {
                expect(alias.replace("${{ matrix.stack }}", stack), `${jobName} ${stack}`).toBe(contextOf(stack));
            }
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
