import { describe } from "vitest";
import { stackSuite } from "./stackSuite";

describe("dev stack (Pulumi.dev.yaml)", () => {
    stackSuite({
        stackFile: "Pulumi.dev.yaml",
        stack: "dev",
        databases: [
            { name: "crypto_exchange", schedule: "0 */6 * * *", retentionDays: 7 },
            { name: "kong", schedule: "0 1 * * *", retentionDays: 3 },
            { name: "goalert", schedule: "30 1 * * *", retentionDays: 3 },
        ],
        worm: false,
        replica: false,
        irsa: false,
        builtImage: false,
        alerts: false,
    });
});
