/**
 * Runs policies the way the Pulumi engine would, without starting a policy server: resource
 * policies get ResourceValidationArgs, stack policies a list of PolicyResources (as in
 * pulumi/pulumi-policy-aws's awsguard test utilities).
 */
import type { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { RecordedResource } from "../helpers/pulumiMocks";

export function resourceArgs(type: string, props: Record<string, any>, name = "r"): ResourceValidationArgs {
    return {
        type,
        props,
        urn: `urn:pulumi:test::krystalinex-backup::${type}::${name}`,
        name,
        opts: { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] },
        stackTags: new Map(),
        isType: () => false,
        getConfig: <T extends object>() => ({}) as T,
        notApplicable: () => {
            throw new Error("not applicable");
        },
    } as unknown as ResourceValidationArgs;
}

export async function violationsOf(policy: ResourceValidationPolicy, args: ResourceValidationArgs): Promise<string[]> {
    const found: string[] = [];
    const validators = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource!];
    for (const v of validators) {
        await v(args, (message) => found.push(message));
    }
    return found;
}

export function policyResource(type: string, props: Record<string, any>, name: string, extra: Partial<PolicyResource> = {}): PolicyResource {
    return {
        type,
        props,
        urn: `urn:pulumi:test::krystalinex-backup::${type}::${name}`,
        name,
        opts: {} as PolicyResource["opts"],
        dependencies: [],
        propertyDependencies: {},
        isType: () => false,
        asType: () => undefined,
        ...extra,
    } as unknown as PolicyResource;
}

export async function stackViolationsOf(policy: StackValidationPolicy, resources: PolicyResource[], config: object = {}): Promise<string[]> {
    const found: string[] = [];
    const args = {
        resources,
        stackTags: new Map(),
        getConfig: <T extends object>() => config as T,
        notApplicable: () => {
            throw new Error("not applicable");
        },
    } as unknown as StackValidationArgs;
    await policy.validateStack(args, (message) => found.push(message));
    return found;
}

/** The mocks' recorded resources as the engine would hand them to stack policies. */
export function fromRecorded(recorded: RecordedResource[]): PolicyResource[] {
    const ids = new Map<string, PolicyResource>();
    const resources = recorded.map((r) => policyResource(r.type, r.inputs, r.name));
    resources.forEach((r) => ids.set(`${r.name}-id`, r));
    // Property dependencies as the engine records them: an input holding another resource's id.
    for (const r of resources) {
        for (const [prop, value] of Object.entries(r.props)) {
            const dep = typeof value === "string" ? ids.get(value) : undefined;
            if (dep) {
                r.propertyDependencies[prop] = [dep];
                r.dependencies.push(dep);
            }
        }
    }
    return resources;
}
