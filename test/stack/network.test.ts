/** NetworkPolicy egress as Kubernetes evaluates it: on the destination pod's port, after Service translation. */
import { describe, expect, it } from "vitest";
import { egressRules, serviceNamespace } from "../../components/kubernetes/networkPolicy";

describe("egress rules", () => {
    const base = { namespace: "krystalinex", policyName: "p", databasePodPorts: [5432, 5432, 6432] };

    it("opens the databases' pod ports, once each, to the namespace's pods and the configured CIDRs", () => {
        const rules = egressRules({ ...base, databaseCidrs: ["10.0.0.0/16"] });
        expect(rules[1]).toEqual({
            to: [{ podSelector: {} }, { ipBlock: { cidr: "10.0.0.0/16" } }],
            ports: [{ protocol: "TCP", port: 5432 }, { protocol: "TCP", port: 6432 }],
        });
    });

    it.each([
        ["prometheus-pushgateway.monitoring.svc", "monitoring"],
        ["prometheus-pushgateway.monitoring.svc.cluster.local", "monitoring"],
        ["pushgateway.observability", "observability"],
        ["pushgateway", "krystalinex"],
        ["push.example.com", undefined],
        ["10.1.2.3", undefined],
    ])("finds the namespace of %s", (host, ns) => {
        expect(serviceNamespace(host, "krystalinex")).toBe(ns);
    });

    it("opens the Pushgateway pod's port to its namespace only (any destination when it is outside the cluster)", () => {
        const inCluster = egressRules({ ...base, pushgateway: { url: "http://prometheus-pushgateway.monitoring.svc:9091", podPort: 9091 } });
        expect(inCluster.at(-1)).toEqual({
            to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } }, podSelector: {} }],
            ports: [{ protocol: "TCP", port: 9091 }],
        });
        const outside = egressRules({ ...base, pushgateway: { url: "https://push.example.com", podPort: 443 } });
        expect(outside.at(-1)).toEqual({ ports: [{ protocol: "TCP", port: 443 }] });
        expect(egressRules(base)).toHaveLength(3);
    });
});
