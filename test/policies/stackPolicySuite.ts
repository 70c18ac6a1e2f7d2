/**
 * Every policy over every resource a real stack registers under mocks: no violations. Then the
 * same resources with three things broken yield exactly three violations.
 */
import { readFileSync } from "fs";
import * as path from "path";
import { beforeAll, expect, it } from "vitest";
import { resourcePolicies, stackPolicies } from "../../policies/rules";
import { ROOT, runStack, StackRun } from "../helpers/pulumiMocks";
import { fromRecorded, resourceArgs, stackViolationsOf, violationsOf } from "./harness";

type Level = "mandatory" | "advisory" | "disabled";

function packConfig(stack: string): Record<string, Level | Record<string, unknown>> {
    return JSON.parse(readFileSync(path.join(ROOT, "policies", `config.${stack}.json`), "utf8"));
}

/** Mandatory violations, as `policy: message`, with the pack config's levels applied. */
async function mandatoryViolations(run: StackRun, stack: string): Promise<string[]> {
    const config = packConfig(stack);
    const level = (name: string, fallback: Level = "mandatory"): Level => {
        const c = config[name];
        return typeof c === "string" ? c : ((c as { enforcementLevel?: Level } | undefined)?.enforcementLevel ?? fallback);
    };
    const found: string[] = [];
    for (const r of run.resources) {
        for (const p of resourcePolicies) {
            if (level(p.name, p.enforcementLevel as Level) === "mandatory") {
                for (const v of await violationsOf(p, resourceArgs(r.type, r.inputs, r.name))) {
                    found.push(`${p.name}: ${r.name}: ${v}`);
                }
            }
        }
    }
    const resources = fromRecorded(run.resources);
    for (const p of stackPolicies) {
        const c = config[p.name];
        if (level(p.name, p.enforcementLevel as Level) === "mandatory") {
            for (const v of await stackViolationsOf(p, resources, typeof c === "object" ? c : {})) {
                found.push(`${p.name}: ${v}`);
            }
        }
    }
    return found;
}

export function stackPolicySuite(stackFile: string, stack: string) {
    let run: StackRun;

    beforeAll(async () => {
        run = await runStack(stackFile, { stack });
    }, 60_000);

    it(`every policy passes every resource of ${stackFile}`, async () => {
        expect(run.resources.length).toBeGreaterThan(30);
        expect(await mandatoryViolations(run, stack)).toEqual([]);
    });

    it("the advisory policy finds nothing unknown when every value is known", async () => {
        const advisory = stackPolicies.find((p) => p.name === "kx-stack-unverifiable")!;
        expect(await stackViolationsOf(advisory, fromRecorded(run.resources))).toEqual([]);
    });

    it("versioning off, a literal password and an image tagged latest yield exactly those violations", async () => {
        const broken: StackRun = { ...run, resources: structuredClone(run.resources) };
        const versioning = broken.resources.find((r) => r.type === "aws:s3/bucketVersioning:BucketVersioning")!;
        versioning.inputs.versioningConfiguration.status = "Suspended";
        const cron = broken.resources.find((r) => r.type === "kubernetes:batch/v1:CronJob" && r.inputs.metadata.name === "kx-backup-backup-kong")!;
        const container = cron.inputs.spec.jobTemplate.spec.template.spec.containers[0];
        container.env = container.env.map((e: any) => (e.name === "PGPASSWORD" ? { name: "PGPASSWORD", value: "hunter2" } : e));
        const verify = broken.resources.find((r) => r.type === "kubernetes:batch/v1:CronJob" && r.inputs.metadata.name === "kx-backup-verify-goalert")!;
        verify.inputs.spec.jobTemplate.spec.template.spec.containers[0].image = "ghcr.io/krystalinex/kx-backup:latest";
        expect((await mandatoryViolations(broken, stack)).sort()).toEqual([
            `kx-k8s-images-pinned: ${verify.name}: container kx-backup: image ghcr.io/krystalinex/kx-backup:latest uses latest: pin it by digest or an explicit version tag`,
            `kx-k8s-no-literal-secrets: ${cron.name}: container kx-backup: env PGPASSWORD is a literal; use valueFrom.secretKeyRef`,
            `kx-s3-versioning: ${versioning.name}: versioning must be Enabled, is "Suspended"`,
        ]);
    });
}
