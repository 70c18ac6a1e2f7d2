import * as pulumi from "@pulumi/pulumi";
import { PROJECT, StackConfig, validateStackConfig } from "./config";

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

/** Config keys whose values are secrets: read with the secret getters, never handed to the validator. */
const SECRET_KEYS = ["dbPasswords", "ntfyUrl", "signingKey", "kubeconfig", "registryPassword"];

/**
 * The only reader of `pulumi.Config`. Plain keys are handed to the pure validator; secrets are
 * read with the secret getters, and the validator learns only which ones are present.
 */
export function loadStackConfig(): { config: StackConfig; secrets: StackSecrets } {
    const cfg = new pulumi.Config(PROJECT);
    const prefix = `${PROJECT}:`;
    const all = pulumi.runtime.allConfig();
    const values: Record<string, unknown> = {};
    for (const fullKey of Object.keys(all)) {
        if (!fullKey.startsWith(prefix)) {
            continue;
        }
        const key = fullKey.slice(prefix.length);
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
