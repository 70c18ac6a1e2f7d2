import { describe, expect, it } from "vitest";
import { stackPolicySuite } from "./stackPolicySuite";
import { readFileSync } from "fs";
import * as path from "path";
import { ROOT } from "../helpers/pulumiMocks";

describe("policies over the dev stack (with config.dev.json)", () => {
    stackPolicySuite("Pulumi.dev.yaml", "dev");

    it("dev relaxes exactly the WORM policies prod enforces", () => {
        const dev = JSON.parse(readFileSync(path.join(ROOT, "policies", "config.dev.json"), "utf8"));
        const relaxed = Object.entries(dev).filter(([, v]) => v === "advisory").map(([k]) => k);
        expect(relaxed.sort()).toEqual(["kx-azure-immutability", "kx-s3-object-lock"]);
    });
});
