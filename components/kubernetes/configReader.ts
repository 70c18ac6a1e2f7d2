import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labels } from "./workload";

/** Exactly what the configuration export does: read ConfigMaps and Secrets of one namespace. */
export const CONFIG_READER_RULES = [{ apiGroups: [""], resources: ["configmaps", "secrets"], verbs: ["get", "list"] }];

export interface ConfigReaderArgs {
    readonly namespace: pulumi.Input<string>;
    /** ServiceAccount the configuration export runs as. */
    readonly serviceAccountName: pulumi.Input<string>;
    readonly roleName: string;
}

/** Read-only RBAC for the configuration export, bound in its namespace only. */
export class ConfigReader extends pulumi.ComponentResource {
    constructor(name: string, args: ConfigReaderArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:ConfigReader", name, {}, opts);
        const role = new k8s.rbac.v1.Role(`${name}-role`, {
            metadata: { name: args.roleName, namespace: args.namespace, labels: labels("archive") },
            rules: CONFIG_READER_RULES,
        }, { parent: this });
        new k8s.rbac.v1.RoleBinding(`${name}-binding`, {
            metadata: { name: args.roleName, namespace: args.namespace, labels: labels("archive") },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
            subjects: [{ kind: "ServiceAccount", name: args.serviceAccountName, namespace: args.namespace }],
        }, { parent: this });
        this.registerOutputs({});
    }
}
