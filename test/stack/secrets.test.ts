/** The prod stack given its secrets as config: a kubeconfig for the provider and an escrowed signing key. */
import { beforeAll, describe, expect, it } from "vitest";
import { runStack, StackRun, unwrapSecret } from "../helpers/pulumiMocks";

const KUBECONFIG = "apiVersion: v1\nkind: Config\ncurrent-context: somewhere-else\n# token: mock-kubeconfig-token-Rt61\n";
const SIGNING_KEY = "escrowed-signing-key-Lm08-0123456789abcdef";

let run: StackRun;

beforeAll(async () => {
    run = await runStack("Pulumi.prod.yaml", { stack: "prod", secrets: { kubeconfig: KUBECONFIG, signingKey: SIGNING_KEY } });
}, 60_000);

describe("secrets given as stack config", () => {
    it("hands the kubeconfig to the stack's provider as a secret, with the stack's own context (never the file's current-context)", () => {
        const provider = run.one("pulumi:providers:kubernetes");
        expect(unwrapSecret(provider.inputs.kubeconfig)).toEqual({ secret: true, value: KUBECONFIG });
        expect(provider.inputs.context).toBe("kx-prod");
    });

    it("uses the configured signing key instead of generating one", () => {
        expect(run.byType("random:index/randomPassword:RandomPassword")).toHaveLength(0);
        const secret = run.one("kubernetes:core/v1:Secret", (r) => r.inputs.metadata.name === "kx-backup-signing");
        const data = unwrapSecret(secret.inputs.stringData);
        expect(data.secret).toBe(true);
        expect(unwrapSecret(data.value["signing-key"]).value).toBe(SIGNING_KEY);
    });

    it("leaks neither into any other resource", () => {
        for (const r of run.resources.filter((x) => x.type !== "kubernetes:core/v1:Secret" && x.type !== "pulumi:providers:kubernetes")) {
            const text = JSON.stringify(r.inputs);
            expect(text, `${r.type} ${r.name}`).not.toContain("mock-kubeconfig-token-Rt61");
            expect(text, `${r.type} ${r.name}`).not.toContain(SIGNING_KEY);
        }
    });
});
