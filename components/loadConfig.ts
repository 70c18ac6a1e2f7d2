import * as pulumi from "@pulumi/pulumi";
import { PROJECT, SECRET_KEYS, StackConfig, validateStackConfig } from "./config";

/** What the stack needs beyond plain config: the secrets, kept as Pulumi secrets. */
export interface StackSecrets {
    /** Database passwords by database name. */
    readonly dbPasswords: pulumi.Output<Record<string, string>>;
    readonly ntfyUrl?: pulumi.Output<string>;
    /** Manifest signing key; generated (and kept in the stack's state) when not given. */
    readonly signingKey?: pulumi.Output<string>;
    /** A whole kubeconfig for this stack's cluster; without it the provider reads KUBECONFIG. */
    readonly kubeconfig?: pulumi.Output<string>;
    /** Push password for a registry other than ECR. */
    readonly registryPassword?: pulumi.Output<string>;
}

/**
 * The only reader of `pulumi.Config`. Plain keys are handed to the pure validator; secrets are
 * read with the secret getters, and the validator learns only which ones are present.
 */
export function loadStackConfig(): { config: StackConfig; secrets: StackSecrets } {
    const cfg = new pulumi.Config(PROJECT);
    const prefix = `${PROJECT}:`;
    const all = pulumi.runtime.allConfig();
    const values: Record<string, unknown> = {};
    const secretKeys: string[] = [];
    for (const fullKey of Object.keys(all)) {
        if (!fullKey.startsWith(prefix)) {
            continue;
        }
        const key = fullKey.slice(prefix.length);
        if (isSecret(fullKey)) {
            secretKeys.push(key);
        }
        if (!SECRET_KEYS.includes(key)) {
            values[key] = parseValue(all[fullKey]);
        }
    }
    const passwords = cfg.getSecretObject<Record<string, string>>("dbPasswords");
    // Only the names are read in the clear, to tell the validator which databases have one.
    const passwordNames = Object.keys(safeParse(all[`${prefix}dbPasswords`]));
    const config = validateStackConfig({
        stack: pulumi.getStack(),
        values,
        passwordsFor: passwordNames,
        hasNtfyUrl: all[`${prefix}ntfyUrl`] !== undefined,
        hasRegistryPassword: all[`${prefix}registryPassword`] !== undefined,
        awsRegion: all["aws:region"],
        secretKeys,
    });
    return {
        config,
        secrets: {
            dbPasswords: passwords ?? pulumi.secret<Record<string, string>>({}),
            ntfyUrl: cfg.getSecret("ntfyUrl"),
            signingKey: cfg.getSecret("signingKey"),
            kubeconfig: cfg.getSecret("kubeconfig"),
            registryPassword: cfg.getSecret("registryPassword"),
        },
    };
}

/**
 * Whether a config key was set with `--secret` (a `--secret --path` value makes its whole top-level
 * key secret). The SDK's own check is internal; the language host also hands the list over in
 * PULUMI_CONFIG_SECRET_KEYS.
 */
function isSecret(fullKey: string): boolean {
    const check = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    if (typeof check === "function") {
        return check(fullKey);
    }
    const listed = safeParseList(process.env.PULUMI_CONFIG_SECRET_KEYS);
    return listed.includes(fullKey);
}

function safeParseList(text: string | undefined): string[] {
    try {
        const v = JSON.parse(text ?? "[]");
        return Array.isArray(v) ? v.map(String) : [];
    } catch {
        return [];
    }
}

/** Structured config arrives as JSON text, plain strings as themselves. */
function parseValue(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

function safeParse(text: string | undefined): Record<string, unknown> {
    if (text === undefined) {
        return {};
    }
    try {
        const v = JSON.parse(text);
        return typeof v === "object" && v !== null ? v : {};
    } catch {
        return {};
    }
}
