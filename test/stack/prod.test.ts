import { describe } from "vitest";
import { stackSuite } from "./stackSuite";

describe("prod stack (Pulumi.prod.yaml)", () => {
    stackSuite({
        stackFile: "Pulumi.prod.yaml",
        stack: "prod",
        databases: [
            { name: "crypto_exchange", schedule: "0 */6 * * *", retentionDays: 30 },
            { name: "kong", schedule: "0 1 * * *", retentionDays: 7 },
            { name: "goalert", schedule: "30 1 * * *", retentionDays: 7 },
        ],
        worm: true,
        replica: true,
        irsa: true,
        builtImage: true,
        alerts: true,
    });
});
