import * as pulumi from "@pulumi/pulumi";
import { PROJECT, StackConfig, validateStackConfig } from "./config";

/** What the stack needs beyond plain config: the secrets, kept as Pulumi secrets. */
export interface StackSecrets {
    /** Database passwords by database name. */
    readonly dbPasswords: pulumi.Output<Record<string, string>>;
    readonly ntfyUrl?: pulumi.Output<string>;
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
    for (const fullKey of Object.keys(all)) {
        if (!fullKey.startsWith(prefix)) {
            continue;
        }
        const key = fullKey.slice(prefix.length);
        if (key === "dbPasswords" || key === "ntfyUrl") {
            continue;
        }
        values[key] = parseValue(all[fullKey]);
    }
    const passwords = cfg.getSecretObject<Record<string, string>>("dbPasswords");
    // Only the names are read in the clear, to tell the validator which databases have one.
    const passwordNames = Object.keys(safeParse(all[`${prefix}dbPasswords`]));
    const ntfyUrl = cfg.getSecret("ntfyUrl");
    const config = validateStackConfig({
        stack: pulumi.getStack(),
        values,
        passwordsFor: passwordNames,
        hasNtfyUrl: all[`${prefix}ntfyUrl`] !== undefined,
    });
    return {
        config,
        secrets: { dbPasswords: passwords ?? pulumi.secret<Record<string, string>>({}), ntfyUrl },
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
