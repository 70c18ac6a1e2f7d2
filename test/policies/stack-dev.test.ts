import { describe, expect, it } from "vitest";
import { stackPolicySuite } from "./stackPolicySuite";
import { readFileSync } from "fs";
import * as path from "path";
import { ROOT } from "../helpers/pulumiMocks";

describe("policies over the dev stack (with config.dev.json)", () => {
    stackPolicySuite("Pulumi.dev.yaml", "dev", { replica: false });

    it("dev relaxes exactly the WORM and shared-key policies prod enforces (dev has no lock, and a connection string)", () => {
        const dev = JSON.parse(readFileSync(path.join(ROOT, "policies", "config.dev.json"), "utf8"));
        const relaxed = Object.entries(dev).filter(([, v]) => v === "advisory").map(([k]) => k);
        expect(relaxed.sort()).toEqual(["kx-azure-immutability", "kx-azure-no-shared-key", "kx-s3-object-lock"]);
        const prod = JSON.parse(readFileSync(path.join(ROOT, "policies", "config.prod.json"), "utf8"));
        expect(Object.values(prod).filter((v) => v === "advisory" || v === "disabled")).toEqual([]);
        expect(prod["kx-azure-immutability"]).toEqual({ requireLocked: true });
    });
});
