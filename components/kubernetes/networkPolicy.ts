import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { APP_NAME, labels } from "./workload";

type EgressRule = k8s.types.input.networking.v1.NetworkPolicyEgressRule;

export interface BackupNetworkPolicyArgs {
    readonly namespace: string;
    readonly policyName: string;
    /**
     * Ports the database servers listen on — the pods' ports, not the Services': NetworkPolicy is
     * evaluated after a Service has translated the destination (5433 → 5432 is not allowed by 5433).
     */
    readonly databasePodPorts: readonly number[];
    /**
     * Where the databases are: CIDR blocks. Pods of the same namespace (the runbook's Services)
     * are always allowed. Default: none beyond the namespace.
     */
    readonly databaseCidrs?: readonly string[];
    /** The Pushgateway the jobs push metrics to: its URL and its pod's port. */
    readonly pushgateway?: { readonly url: string; readonly podPort: number };
}

/**
 * The namespace of an in-cluster Service host (`svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`;
 * a bare `svc` is in `own`), or undefined for a host outside the cluster.
 */
export function serviceNamespace(host: string, own: string): string | undefined {
    const m = /^([a-z0-9-]+)(?:\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?)?$/.exec(host);
    if (!m) {
        return undefined;
    }
    return m[2] ?? own;
}

/** The egress rules, pure: DNS, the databases on their pods' ports, HTTPS, and the Pushgateway. */
export function egressRules(args: BackupNetworkPolicyArgs): EgressRule[] {
    const tcp = (ports: readonly number[]) => [...new Set(ports)].sort((a, b) => a - b).map((port) => ({ protocol: "TCP", port }));
    const rules: EgressRule[] = [
        {
            to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
            ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }],
        },
        {
            to: [{ podSelector: {} }, ...(args.databaseCidrs ?? []).map((cidr) => ({ ipBlock: { cidr } }))],
            ports: tcp(args.databasePodPorts),
        },
        // HTTPS: S3, Azure, STS, ntfy; and the Kubernetes API for the configuration export,
        // which many CNIs see after DNAT on the API server's own port (6443).
        { ports: tcp([443, 6443]) },
    ];
    if (args.pushgateway) {
        const ns = serviceNamespace(new URL(args.pushgateway.url).hostname, args.namespace);
        rules.push(ns === undefined
            ? { ports: tcp([args.pushgateway.podPort]) }
            : { to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } }, podSelector: {} }], ports: tcp([args.pushgateway.podPort]) });
    }
    return rules;
}

/** Backup pods: no ingress; egress only to the databases, cluster DNS, HTTPS and the Pushgateway. */
export class BackupNetworkPolicy extends pulumi.ComponentResource {
    constructor(name: string, args: BackupNetworkPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:BackupNetworkPolicy", name, {}, opts);
        new k8s.networking.v1.NetworkPolicy(`${name}-egress`, {
            metadata: { name: args.policyName, namespace: args.namespace, labels: labels("backup") },
            spec: {
                podSelector: { matchLabels: { "app.kubernetes.io/name": APP_NAME } },
                policyTypes: ["Ingress", "Egress"],
                ingress: [],
                egress: egressRules(args),
            },
        }, { parent: this });
        this.registerOutputs({});
    }
}
