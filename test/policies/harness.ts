/**
 * Runs policies the way the Pulumi engine would, without starting a policy server: resource
 * policies get ResourceValidationArgs, stack policies a list of PolicyResources (as in
 * pulumi/pulumi-policy-aws's awsguard test utilities). Props go behind the engine's own
 * unknown-checking proxy, and a policy that touches an unknown value is reported as the engine
 * reports it — "can't run during preview" — never as passed.
 */
import type { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { unknownCheckingProxy, UnknownValueError } from "@pulumi/policy";
import { RecordedResource } from "../helpers/pulumiMocks";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const sentinels = require("@pulumi/policy/proxy") as { unknownStringValue: string; unknownObjectValue: string };

/** The engine's sentinel for an unknown string (what a bucket ARN is at the first preview). */
export const UNKNOWN_STRING = sentinels.unknownStringValue;

export function resourceArgs(type: string, props: Record<string, any>, name = "r", config: object = {}): ResourceValidationArgs {
    return {
        type,
        props: unknownCheckingProxy(props),
        urn: `urn:pulumi:test::krystalinex-backup::${type}::${name}`,
        name,
        opts: { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] },
        stackTags: new Map(),
        isType: () => false,
        getConfig: <T extends object>() => config as T,
        notApplicable: () => {
            throw new Error("not applicable");
        },
    } as unknown as ResourceValidationArgs;
}

/** Violations, or the engine's advisory when the policy read an unknown value. */
export async function violationsOf(policy: ResourceValidationPolicy, args: ResourceValidationArgs): Promise<string[]> {
    const found: string[] = [];
    const validators = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource!];
    for (const v of validators) {
        try {
            await v(args, (message) => found.push(message));
        } catch (e) {
            if (e instanceof UnknownValueError) {
                found.push(`advisory: can't run ${policy.name} during preview: ${(e as Error).message}`);
            } else {
                throw e;
            }
        }
    }
    return found;
}

export function policyResource(type: string, props: Record<string, any>, name: string, extra: Partial<PolicyResource> = {}): PolicyResource {
    return {
        type,
        props: unknownCheckingProxy(props),
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
    try {
        await policy.validateStack(args, (message) => found.push(message));
    } catch (e) {
        if (e instanceof UnknownValueError) {
            found.push(`advisory: can't run ${policy.name} during preview: ${(e as Error).message}`);
        } else {
            throw e;
        }
    }
    return found;
}

/**
 * The mocks' recorded resources as the engine hands them to stack policies: their URNs, parents
 * and property dependencies exactly as the program registered them.
 */
export function fromRecorded(recorded: RecordedResource[]): PolicyResource[] {
    const byUrn = new Map<string, PolicyResource>();
    const resources = recorded.map((r) => {
        const p = policyResource(r.type, r.inputs, r.name, { urn: r.opts.urn });
        byUrn.set(r.opts.urn, p);
        return p;
    });
    recorded.forEach((r, i) => {
        const p = resources[i] as { -readonly [K in keyof PolicyResource]: PolicyResource[K] };
        for (const [prop, urns] of Object.entries(r.opts.propertyDependencies)) {
            p.propertyDependencies[prop] = urns.map((u) => byUrn.get(u)).filter((d): d is PolicyResource => d !== undefined);
        }
        p.dependencies = r.opts.dependencies.map((u) => byUrn.get(u)).filter((d): d is PolicyResource => d !== undefined);
        p.parent = byUrn.get(r.opts.parent);
    });
    return resources;
}
