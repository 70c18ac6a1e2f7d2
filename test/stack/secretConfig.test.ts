/**
 * A secret set on the wrong key — a typo of a secret key, or `--secret` on plain configuration —
 * must never be printed by validation (preview output lands in CI logs and PR comments) and must
 * never reach resources in clear: it is refused, by key, without its value.
 */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../components/config";
import { loadStackConfig } from "../../components/loadConfig";
import { stackConfig, withSiteValues } from "../helpers/pulumiMocks";

const P = "krystalinex-backup";
const LEAK = "hunter2-Qz71-not-for-logs";

/** loadStackConfig with the prod stack file plus `extra`, the keys in `secret` marked secret as `pulumi config set --secret` does. */
function load(extra: Record<string, string>, secret: string[]): string {
    pulumi.runtime.setMocks({ newResource: () => ({ id: "x", state: {} }), call: () => ({}) }, P, "prod", false);
    const config = { ...withSiteValues(stackConfig("Pulumi.prod.yaml")), [`${P}:dbPasswords`]: JSON.stringify({ crypto_exchange: "a", kong: "b", goalert: "c" }), [`${P}:ntfyUrl`]: "https://ntfy.example.test/t", ...extra };
    pulumi.runtime.setAllConfig(config, [`${P}:dbPasswords`, `${P}:ntfyUrl`, ...secret]);
    try {
        loadStackConfig();
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
    }
    return "";
}

describe("secrets on the wrong config key", () => {
    it("a misspelt secret key is refused by name, its value never shown", () => {
        const message = load({ [`${P}:dbpasswords`]: JSON.stringify({ kong: LEAK }) }, [`${P}:dbpasswords`]);
        expect(message).toContain("krystalinex-backup:dbpasswords: got a secret value (not shown); allowed: no such key");
        expect(message).not.toContain(LEAK);
    });

    it("--secret on plain configuration is refused (it would be rendered in clear), and nothing under it is shown", () => {
        const monitoring = { pushgatewayUrl: `https://push:${LEAK}@pushgateway.example.test`, pushgatewayPodPort: 9091, prometheusRule: true, dashboard: true };
        const message = load({ [`${P}:monitoring`]: JSON.stringify(monitoring) }, [`${P}:monitoring`]);
        expect(message).toMatch(/krystalinex-backup:monitoring: got a secret value \(not shown\); allowed: a plain value, set without --secret/);
        // The URL is also invalid (credentials in it): reported, without the URL.
        expect(message).toContain("krystalinex-backup:monitoring.pushgatewayUrl: got a secret value (not shown)");
        expect(message).not.toContain(LEAK);
    });

    it("the real secret keys are still accepted as secrets", () => {
        expect(load({ [`${P}:signingKey`]: LEAK }, [`${P}:signingKey`])).toBe("");
    });
});
