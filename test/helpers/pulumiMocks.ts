/**
 * Runs the real Pulumi program under `pulumi.runtime.setMocks`, with the config of a real stack
 * file, and records every resource it registers. Provider calls are refused unless listed here:
 * an accidental invoke fails loudly instead of returning an empty object.
 */
import * as pulumi from "@pulumi/pulumi";
import { readFileSync } from "fs";
import * as path from "path";
import { parse } from "yaml";

export const ROOT = path.resolve(__dirname, "..", "..");
const PROJECT = "krystalinex-backup";

export interface RecordedResource {
    type: string;
    name: string;
    inputs: Record<string, any>;
}

export interface StackRun {
    resources: RecordedResource[];
    unexpectedCalls: string[];
    exports: Record<string, unknown>;
    /** The secret stand-ins that were configured, to search for leaks. */
    secretValues: string[];
    byType(type: string): RecordedResource[];
    one(type: string, predicate?: (r: RecordedResource) => boolean): RecordedResource;
}

/** Reads a stack file into the flat `project:key` → string map Pulumi hands a program. */
export function stackConfig(stackFile: string): Record<string, string> {
    const doc = parse(readFileSync(path.join(ROOT, stackFile), "utf8")) as { config: Record<string, unknown> };
    return Object.fromEntries(
        Object.entries(doc.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
}

/** Computed fields the program reads from resources that providers would fill in. */
function computed(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    switch (type) {
        case "aws:s3/bucket:Bucket": {
            const bucket = `${inputs.bucketPrefix ?? name}mock123`;
            return { bucket, arn: `arn:aws:s3:::${bucket}`, region: "eu-west-1" };
        }
        case "aws:kms/key:Key":
            return { arn: `arn:aws:kms:eu-west-1:111122223333:key/${name}` };
        case "aws:iam/role:Role":
        case "aws:iam/policy:Policy":
            return { arn: `arn:aws:iam::111122223333:role/${name}`, name };
        case "aws:iam/user:User":
            return { name };
        case "aws:iam/accessKey:AccessKey":
            return { secret: MOCK_AWS_SECRET };
        case "azure-native:storage:StorageAccount":
            return {
                name: inputs.accountName,
                primaryEndpoints: { blob: `https://${inputs.accountName}.blob.core.windows.net/` },
            };
        case "azure-native:storage:BlobContainer":
            return { name: inputs.containerName };
        case "azure-native:managedidentity:UserAssignedIdentity":
            return { clientId: "00000000-0000-0000-0000-0000000c1e47", principalId: "00000000-0000-0000-0000-00000000b1d0", name };
        case "azure-native:resources:ResourceGroup":
            return { name: inputs.resourceGroupName };
        case "docker:index/image:Image":
            return { repoDigest: `${String(inputs.imageName).split(":")[0]}@sha256:${"ab".repeat(32)}` };
        default:
            return {};
    }
}

export const MOCK_AWS_SECRET = "mock-aws-secret-key-Zq81";
export const MOCK_AZURE_KEY = "mock-azure-account-key-Pw93==";

export async function runStack(stackFile: string, opts: { stack: string; overrides?: Record<string, unknown> }): Promise<StackRun> {
    const resources: RecordedResource[] = [];
    const unexpectedCalls: string[] = [];
    pulumi.runtime.setMocks(
        {
            newResource(args) {
                const state = { ...args.inputs, ...computed(args.type, args.name, args.inputs) };
                resources.push({ type: args.type, name: args.name, inputs: args.inputs });
                return { id: `${args.name}-id`, state };
            },
            call(args) {
                if (args.token === "azure-native:storage:listStorageAccountKeys") {
                    return { keys: [{ keyName: "key1", value: MOCK_AZURE_KEY, permissions: "FULL" }] };
                }
                unexpectedCalls.push(args.token);
                throw new Error(`unexpected provider call ${args.token}: mock it explicitly if the program needs it`);
            },
        },
        PROJECT,
        opts.stack,
        false,
    );

    const suffix = Math.random().toString(36).slice(2, 10);
    const config = stackConfig(stackFile);
    const databases = JSON.parse(config[`${PROJECT}:databases`]) as { name: string }[];
    const passwords = Object.fromEntries(databases.map((d) => [d.name, `pw-${d.name}-${suffix}`]));
    const ntfyUrl = `https://ntfy.example.test/topic-${suffix}`;
    config[`${PROJECT}:dbPasswords`] = JSON.stringify(passwords);
    config[`${PROJECT}:ntfyUrl`] = ntfyUrl;
    for (const [k, v] of Object.entries(opts.overrides ?? {})) {
        config[`${PROJECT}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    }
    pulumi.runtime.setAllConfig(config, [`${PROJECT}:dbPasswords`, `${PROJECT}:ntfyUrl`]);

    const program = await import("../../index");
    const exports: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(program)) {
        exports[k] = await promiseOf(v);
    }
    await settle(() => resources.length);

    return {
        resources,
        unexpectedCalls,
        exports,
        secretValues: [...Object.values(passwords), ntfyUrl, MOCK_AWS_SECRET, MOCK_AZURE_KEY],
        byType: (type) => resources.filter((r) => r.type === type),
        one(type, predicate = () => true) {
            const found = resources.filter((r) => r.type === type && predicate(r));
            if (found.length !== 1) {
                throw new Error(`expected exactly one ${type}, found ${found.length}`);
            }
            return found[0];
        },
    };
}

/** Pulumi's marker for a secret value as the mock monitor receives it. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Unwraps a value the monitor received, saying whether it arrived marked secret. */
export function unwrapSecret(v: any): { secret: boolean; value: any } {
    if (v && typeof v === "object" && v[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270") {
        return { secret: true, value: v.value };
    }
    return { secret: false, value: v };
}

/** Resolves an Output (or a record of Outputs) to its plain value. */
export async function promiseOf(v: unknown): Promise<unknown> {
    if (pulumi.Output.isInstance(v)) {
        return new Promise((resolve) => (v as pulumi.Output<unknown>).apply(resolve));
    }
    if (v && typeof v === "object" && !Array.isArray(v)) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
            out[k] = await promiseOf(x);
        }
        return out;
    }
    return v;
}

/** Waits until registrations stop arriving (they resolve asynchronously after their inputs). */
async function settle(count: () => number): Promise<void> {
    let last = -1;
    let stable = 0;
    while (stable < 5) {
        await new Promise((r) => setTimeout(r, 20));
        const now = count();
        stable = now === last ? stable + 1 : 0;
        last = now;
    }
}
