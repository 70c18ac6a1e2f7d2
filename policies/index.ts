import { PolicyPack } from "@pulumi/policy";
import { resourcePolicies, stackPolicies } from "./rules";

// Constructing the pack starts the policy server: only `pulumi preview --policy-pack` loads this
// file. Tests import ./rules instead.
new PolicyPack("krystalinex-backup", {
    // Mandatory unless the pack's config says otherwise (see config.dev.json).
    enforcementLevel: "mandatory",
    policies: [...resourcePolicies, ...stackPolicies],
});
