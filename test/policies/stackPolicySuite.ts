/**
 * Every policy over every resource a real stack registers under mocks, with the stack's pack
 * config: no violations. Then the same resources with things broken yield exactly those
 * violations — including what the old pack missed (companions of the replica bucket, jobs
 * without labels).
 */
import { readFileSync } from "fs";
import * as path from "path";
import { beforeAll, expect, it } from "vitest";
import { resourcePolicies, stackPolicies } from "../../policies/rules";
import { RecordedResource, ROOT, runStack, StackRun } from "../helpers/pulumiMocks";
import { validatedFrom } from "../helpers/stackFiles";
import { fromRecorded, resourceArgs, stackViolationsOf, violationsOf } from "./harness";

type Level = "mandatory" | "advisory" | "disabled";
type PackConfig = Record<string, Level | Record<string, unknown>>;

export function packConfig(stack: string): PackConfig {
    return JSON.parse(readFileSync(path.join(ROOT, "policies", `config.${stack}.json`), "utf8"));
}

/** Mandatory violations, as `policy: message`, with the pack config's levels and settings applied. */
export async function mandatoryViolations(resources: RecordedResource[], stack: string): Promise<string[]> {
    const config = packConfig(stack);
    const level = (name: string, fallback: Level = "mandatory"): Level => {
        const c = config[name];
        return typeof c === "string" ? c : ((c as { enforcementLevel?: Level } | undefined)?.enforcementLevel ?? fallback);
    };
    const settings = (name: string) => (typeof config[name] === "object" ? config[name] as object : {});
    const found: string[] = [];
    for (const r of resources) {
        for (const p of resourcePolicies) {
            if (level(p.name, p.enforcementLevel as Level) === "mandatory") {
                for (const v of await violationsOf(p, resourceArgs(r.type, r.inputs, r.name, settings(p.name)))) {
                    found.push(`${p.name}: ${r.name}: ${v}`);
                }
            }
        }
    }
    const policyResources = fromRecorded(resources);
    for (const p of stackPolicies) {
        if (level(p.name, p.enforcementLevel as Level) === "mandatory") {
            for (const v of await stackViolationsOf(p, policyResources, settings(p.name))) {
                found.push(`${p.name}: ${v}`);
            }
        }
    }
    return found;
}

export function stackPolicySuite(stackFile: string, stack: string, opts: { replica: boolean }) {
    let run: StackRun;

    beforeAll(async () => {
        run = await runStack(stackFile, { stack });
    }, 60_000);

    it(`every policy passes every resource of ${stackFile}`, async () => {
        expect(run.resources.length).toBeGreaterThan(30);
        expect(await mandatoryViolations(run.resources, stack)).toEqual([]);
    });

    it("the advisory policy finds nothing unknown when every value is known", async () => {
        const advisory = stackPolicies.find((p) => p.name === "kx-stack-unverifiable")!;
        expect(await stackViolationsOf(advisory, fromRecorded(run.resources))).toEqual([]);
    });

    it("the pack config protects exactly the stack's databases, at their RPOs", () => {
        const config = validatedFrom(stackFile, stack);
        const pack = packConfig(stack) as Record<string, Record<string, any>>;
        expect(pack["kx-stack-backup-and-verify"].databases).toEqual(config.databases.map((d) => d.name));
        const rpo = pack["kx-stack-schedule-rpo"].rpoHours;
        for (const db of config.databases) {
            expect(rpo[db.name], db.name).toBe(db.rpoHours);
        }
    });

    it("versioning off, a literal password and an image tagged latest yield exactly those violations", async () => {
        const broken = structuredClone(run.resources);
        const versioning = broken.find((r) => r.type === "aws:s3/bucketVersioning:BucketVersioning")!;
        versioning.inputs.versioningConfiguration.status = "Suspended";
        const cron = broken.find((r) => r.type === "kubernetes:batch/v1:CronJob" && r.inputs.metadata.name === "kx-backup-backup-kong")!;
        const container = cron.inputs.spec.jobTemplate.spec.template.spec.containers[0];
        container.env = container.env.map((e: any) => (e.name === "PGPASSWORD" ? { name: "PGPASSWORD", value: "hunter2" } : e));
        const verify = broken.find((r) => r.type === "kubernetes:batch/v1:CronJob" && r.inputs.metadata.name === "kx-backup-verify-goalert")!;
        verify.inputs.spec.jobTemplate.spec.template.spec.containers[0].image = "ghcr.io/krystalinex/kx-backup:latest";
        expect((await mandatoryViolations(broken, stack)).sort()).toEqual([
            `kx-k8s-images-pinned: ${verify.name}: container kx-backup: image ghcr.io/krystalinex/kx-backup:latest uses latest: pin it by digest or an exact version tag`,
            `kx-k8s-no-literal-secrets: ${cron.name}: container kx-backup: env PGPASSWORD is a literal; use valueFrom.secretKeyRef`,
            `kx-s3-versioning: ${versioning.name}: versioning must be Enabled, is "Suspended"`,
        ]);
    });

    it("a CronJob without the kx-backup labels is hardened and covered all the same", async () => {
        const broken = structuredClone(run.resources);
        const cron = broken.find((r) => r.type === "kubernetes:batch/v1:CronJob" && r.inputs.metadata.name === "kx-backup-verify-kong")!;
        cron.inputs.metadata.labels = {};
        cron.inputs.spec.jobTemplate.spec.template.metadata.labels = { app: "verify" };
        cron.inputs.spec.jobTemplate.spec.template.spec.securityContext.runAsUser = 0;
        expect((await mandatoryViolations(broken, stack)).sort()).toEqual([
            `kx-k8s-cronjob-hardening: ${cron.name}: the pod runs as user 0 (root)`,
            `kx-stack-network-policy: ${cron.name}: no NetworkPolicy in krystalinex selects its pods: they may reach anything`,
        ]);
    });

    if (opts.replica) {
        replicaCompanionsSuite(() => run, stack);
    }
}

/** The replica bucket's companions, removed one by one: each is missed no longer (prod has a replica). */
function replicaCompanionsSuite(stackRun: () => StackRun, stack: string) {
    it("removing the replica's encryption, access block and bucket policy is caught, though the main bucket under the same component has them", async () => {
        const replicaOnly = (type: string) => (r: RecordedResource) => r.type === type && r.name.includes("replica");
        const removed = [
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "aws:s3/bucketPolicy:BucketPolicy",
        ];
        const run = stackRun();
        const broken = run.resources.filter((r) => !removed.some((t) => replicaOnly(t)(r)));
        expect(broken).toHaveLength(run.resources.length - 3);
        const replica = run.one("aws:s3/bucket:Bucket", (r) => r.name.includes("replica"));
        expect((await mandatoryViolations(broken, stack)).sort()).toEqual([
            expect.stringMatching(/^kx-s3-deny-governance-bypass: kx-s3-replica-object-lock: GOVERNANCE retention without a bucket policy/),
            `kx-stack-targets-complete: bucket ${replica.name} has no KMS encryption`,
            `kx-stack-targets-complete: bucket ${replica.name} has no bucket policy (TLS only)`,
            `kx-stack-targets-complete: bucket ${replica.name} has no public-access blocks`,
        ]);
    });

    it("the replica's governance-bypass deny is required too", async () => {
        const broken = structuredClone(stackRun().resources);
        const policy = broken.find((r) => r.type === "aws:s3/bucketPolicy:BucketPolicy" && r.name.includes("replica"))!;
        const doc = JSON.parse(policy.inputs.policy);
        doc.Statement = doc.Statement.filter((s: any) => s.Sid !== "DenyGovernanceBypass");
        policy.inputs.policy = JSON.stringify(doc);
        expect(await mandatoryViolations(broken, stack)).toEqual([
            expect.stringMatching(/^kx-s3-deny-governance-bypass: kx-s3-replica-object-lock: GOVERNANCE retention without a bucket policy denying s3:BypassGovernanceRetention/),
        ]);
    });

    it("a second OIDC issuer (the old AKS one) in a federated credential is refused", async () => {
        const broken = structuredClone(stackRun().resources);
        const fic = broken.find((r) => r.type === "azure-native:managedidentity:FederatedIdentityCredential")!;
        fic.inputs.issuer = "https://westeurope.oic.prod-aks.azure.com/tenant/issuer/";
        const found = (await mandatoryViolations(broken, stack)).filter((v) => v.startsWith("kx-stack-one-oidc-issuer"));
        expect(found.length).toBeGreaterThan(2);
        expect(found.join("\n")).toContain(`${fic.name} trusts westeurope.oic.prod-aks.azure.com/tenant/issuer, but the stack trusts 2 issuers`);
    });
}
