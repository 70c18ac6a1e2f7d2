/**
 * Runs the real Pulumi program under `pulumi.runtime.setMocks`, with the config of a real stack
 * file, and records every resource it registers — with the options the engine would receive
 * (provider, parent, dependencies, protect, retainOnDelete). Provider calls are refused unless
 * listed here: an accidental invoke fails loudly instead of returning an empty object.
 */
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { readFileSync } from "fs";
import * as path from "path";
import { parse } from "yaml";

export const ROOT = path.resolve(__dirname, "..", "..");
const PROJECT = "krystalinex-backup";

/** What the engine receives with a registration, besides the inputs. */
export interface RegistrationOptions {
    urn: string;
    parent: string;
    /** `urn::id` of the provider the resource uses ("" for the default provider). */
    provider: string;
    dependencies: string[];
    propertyDependencies: Record<string, string[]>;
    protect: boolean;
    retainOnDelete: boolean;
}

export interface RecordedResource {
    type: string;
    name: string;
    inputs: Record<string, any>;
    opts: RegistrationOptions;
}

export interface StackRun {
    resources: RecordedResource[];
    unexpectedCalls: string[];
    exports: Record<string, unknown>;
    /** The secret stand-ins that were configured or generated, to search for leaks. */
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

/**
 * A site's own values for the documentation placeholders a committed stack file carries until an
 * operator fills them in (validation refuses the placeholders themselves; test/stack/config.test.ts).
 */
export const SITE_VALUES: Record<string, string> = {
    "111122223333": "210987654321",
    EXAMPLED539D4633E53DE1B71EXAMPLE: "5F1A3B7C9D2E4F60718293A4B5C6D7E8",
};

export function withSiteValues(config: Record<string, string>): Record<string, string> {
    const fill = (text: string) => Object.entries(SITE_VALUES).reduce((t, [from, to]) => t.split(from).join(to), text);
    return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, fill(v)]));
}

export const MOCK_ACCOUNT = "210987654321";
export const MOCK_AWS_SECRET = "mock-aws-secret-key-Zq81";
export const MOCK_AZURE_KEY = "mock-azure-account-key-Pw93==";
export const MOCK_ECR_PASSWORD = "mock-ecr-token-Hn27";
export const MOCK_SIGNING_KEY = "mock-generated-signing-key-Vx55";

/** Computed fields the program reads from resources that providers would fill in. */
function computed(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    switch (type) {
        case "aws:s3/bucket:Bucket": {
            const bucket = `${inputs.bucketPrefix ?? name}mock123`;
            return { bucket, arn: `arn:aws:s3:::${bucket}`, region: "eu-west-1" };
        }
        case "aws:kms/key:Key":
            return { arn: `arn:aws:kms:eu-west-1:${MOCK_ACCOUNT}:key/${name}` };
        case "aws:iam/role:Role":
            return { arn: `arn:aws:iam::${MOCK_ACCOUNT}:role/${name}`, name };
        case "aws:iam/policy:Policy":
            return { arn: `arn:aws:iam::${MOCK_ACCOUNT}:policy/${name}`, name };
        case "aws:iam/user:User":
            return { name };
        case "aws:iam/accessKey:AccessKey":
            return { secret: `${MOCK_AWS_SECRET}-${name}` };
        case "azure-native:storage:StorageAccount":
            return {
                name: inputs.accountName,
                primaryEndpoints: { blob: `https://${inputs.accountName}.blob.core.windows.net/` },
            };
        case "azure-native:storage:BlobContainer":
            return { name: inputs.containerName };
        case "azure-native:managedidentity:UserAssignedIdentity":
            return { clientId: `client-id-of-${name}`, principalId: `principal-id-of-${name}`, name };
        case "azure-native:resources:ResourceGroup":
            return { name: inputs.resourceGroupName };
        case "docker:index/image:Image":
            return { repoDigest: `${String(inputs.imageName).split(":")[0]}@sha256:${"ab".repeat(32)}` };
        case "random:index/randomPassword:RandomPassword":
            return { result: MOCK_SIGNING_KEY };
        default:
            return {};
    }
}

/** Registrations as the engine receives them, by `type::name`, filled in just before newResource runs. */
const received = new Map<string, RegistrationOptions>();
const originalRegister = MockMonitor.prototype.registerResource;
MockMonitor.prototype.registerResource = function (this: MockMonitor, req: any, callback: any) {
    const deps: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((v: any, k: string) => {
        deps[k] = v.getUrnsList();
    });
    received.set(`${req.getType()}::${req.getName()}`, {
        urn: (this as unknown as { newUrn(p: string, t: string, n: string): string }).newUrn(req.getParent(), req.getType(), req.getName()),
        parent: req.getParent(),
        provider: req.getProvider(),
        dependencies: req.getDependenciesList(),
        propertyDependencies: deps,
        protect: req.getProtect() === true,
        retainOnDelete: req.getRetainondelete() === true,
    });
    return originalRegister.call(this, req, callback);
} as typeof MockMonitor.prototype.registerResource;

export interface RunOptions {
    stack: string;
    /** Plain config keys to replace (whole top-level values). */
    overrides?: Record<string, unknown>;
    /** Secret config keys to add (signingKey, kubeconfig, registryPassword). */
    secrets?: Record<string, string>;
    /** Keep the stack file's placeholders as committed (to see validation refuse them). */
    asCommitted?: boolean;
}

export async function runStack(stackFile: string, opts: RunOptions): Promise<StackRun> {
    const resources: RecordedResource[] = [];
    const unexpectedCalls: string[] = [];
    pulumi.runtime.setMocks(
        {
            newResource(args) {
                const state = { ...args.inputs, ...computed(args.type, args.name, args.inputs) };
                const o = received.get(`${args.type}::${args.name}`)!;
                resources.push({ type: args.type, name: args.name, inputs: args.inputs, opts: o });
                return { id: `${args.name}-id`, state };
            },
            call(args) {
                switch (args.token) {
                    case "azure-native:storage:listStorageAccountKeys":
                        return { keys: [{ keyName: "key1", value: MOCK_AZURE_KEY, permissions: "FULL" }] };
                    case "aws:index/getCallerIdentity:getCallerIdentity":
                        return { accountId: MOCK_ACCOUNT, arn: `arn:aws:iam::${MOCK_ACCOUNT}:user/deployer`, userId: "AIDMOCK", id: MOCK_ACCOUNT };
                    case "aws:index/getPartition:getPartition":
                        return { partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws", id: "aws" };
                    case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
                        return {
                            userName: "AWS",
                            password: MOCK_ECR_PASSWORD,
                            authorizationToken: Buffer.from(`AWS:${MOCK_ECR_PASSWORD}`).toString("base64"),
                            proxyEndpoint: `https://${args.inputs.registryId}.dkr.ecr.eu-west-1.amazonaws.com`,
                            expiresAt: "2026-11-27T00:00:00Z",
                            region: "eu-west-1",
                            id: "eu-west-1",
                        };
                    default:
                        unexpectedCalls.push(args.token);
                        throw new Error(`unexpected provider call ${args.token}: mock it explicitly if the program needs it`);
                }
            },
        },
        PROJECT,
        opts.stack,
        false,
    );

    const suffix = Math.random().toString(36).slice(2, 10);
    const committed = stackConfig(stackFile);
    const config = opts.asCommitted ? committed : withSiteValues(committed);
    const databases = JSON.parse(config[`${PROJECT}:databases`]) as { name: string }[];
    const passwords = Object.fromEntries(databases.map((d) => [d.name, `pw-${d.name}-${suffix}`]));
    const ntfyUrl = `https://ntfy.example.test/topic-${suffix}`;
    const secrets: Record<string, string> = { dbPasswords: JSON.stringify(passwords), ntfyUrl, ...opts.secrets };
    for (const [k, v] of Object.entries(secrets)) {
        config[`${PROJECT}:${k}`] = v;
    }
    for (const [k, v] of Object.entries(opts.overrides ?? {})) {
        config[`${PROJECT}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    }
    pulumi.runtime.setAllConfig(config, Object.keys(secrets).map((k) => `${PROJECT}:${k}`));

    const program = await import("../../index");
    const exports: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(program)) {
        exports[k] = await promiseOf(v);
    }
    await settle(() => resources.length);

    const accessKeySecrets = resources.filter((r) => r.type === "aws:iam/accessKey:AccessKey").map((r) => `${MOCK_AWS_SECRET}-${r.name}`);
    return {
        resources,
        unexpectedCalls,
        exports,
        secretValues: [
            ...Object.values(passwords), ntfyUrl, MOCK_AZURE_KEY, MOCK_ECR_PASSWORD, MOCK_SIGNING_KEY, ...accessKeySecrets,
            ...Object.entries(opts.secrets ?? {}).map(([, v]) => v),
        ],
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

/** Every string in a value that is not inside a secret-marked value. */
export function plainStrings(v: any): string[] {
    if (typeof v === "string") {
        return [v];
    }
    if (unwrapSecret(v).secret) {
        return [];
    }
    if (Array.isArray(v)) {
        return v.flatMap(plainStrings);
    }
    if (v && typeof v === "object") {
        return Object.values(v).flatMap(plainStrings);
    }
    return [];
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
