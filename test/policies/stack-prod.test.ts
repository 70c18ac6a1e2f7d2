import { describe } from "vitest";
import { stackPolicySuite } from "./stackPolicySuite";

describe("policies over the prod stack", () => stackPolicySuite("Pulumi.prod.yaml", "prod", { replica: true }));
