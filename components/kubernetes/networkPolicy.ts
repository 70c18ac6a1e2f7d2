import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { APP_NAME, labels } from "./workload";

export interface BackupNetworkPolicyArgs {
    readonly namespace: pulumi.Input<string>;
    readonly policyName: string;
    /** Database ports the jobs connect to. */
    readonly databasePorts: readonly number[];
    /**
     * Where the databases are: CIDR blocks. Pods of the same namespace (the runbook's Services)
     * are always allowed. Default: none beyond the namespace.
     */
    readonly databaseCidrs?: readonly string[];
}

/** Backup pods: no ingress; egress only to the databases, cluster DNS and HTTPS (S3, Azure, ntfy, STS, the API). */
export class BackupNetworkPolicy extends pulumi.ComponentResource {
    constructor(name: string, args: BackupNetworkPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:BackupNetworkPolicy", name, {}, opts);
        const ports = [...new Set(args.databasePorts)].map((port) => ({ protocol: "TCP", port }));
        new k8s.networking.v1.NetworkPolicy(`${name}-egress`, {
            metadata: { name: args.policyName, namespace: args.namespace, labels: labels("backup") },
            spec: {
                podSelector: { matchLabels: { "app.kubernetes.io/name": APP_NAME } },
                policyTypes: ["Ingress", "Egress"],
                ingress: [],
                egress: [
                    {
                        to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
                        ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }],
                    },
                    {
                        to: [{ podSelector: {} }, ...(args.databaseCidrs ?? []).map((cidr) => ({ ipBlock: { cidr } }))],
                        ports,
                    },
                    // HTTPS: S3, Azure, STS, ntfy; and the Kubernetes API for the configuration export,
                    // which many CNIs see after DNAT on the API server's own port (6443).
                    { ports: [{ protocol: "TCP", port: 443 }, { protocol: "TCP", port: 6443 }] },
                ],
            },
        }, { parent: this });
        this.registerOutputs({});
    }
}
