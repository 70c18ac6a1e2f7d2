import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { DatabaseConfig, MonitoringConfig } from "../config";
import { labels } from "../kubernetes/workload";
import { grafanaDashboard } from "./dashboard";
import { prometheusRuleSpec } from "./rules";

export * from "./dashboard";
export * from "./rules";

export interface BackupMonitoringArgs {
    readonly namespace: string;
    readonly namePrefix: string;
    readonly databases: readonly DatabaseConfig[];
    readonly monitoring: MonitoringConfig;
}

/** The alerts (a PrometheusRule for the Prometheus operator) and the Grafana dashboard (a ConfigMap for its sidecar). */
export class BackupMonitoring extends pulumi.ComponentResource {
    constructor(name: string, args: BackupMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:BackupMonitoring", name, {}, opts);
        const m = args.monitoring;
        if (m.prometheusRule) {
            new k8s.apiextensions.CustomResource(`${name}-rules`, {
                apiVersion: "monitoring.coreos.com/v1",
                kind: "PrometheusRule",
                metadata: { name: `${args.namePrefix}-alerts`, namespace: args.namespace, labels: { ...labels("monitoring"), ...m.ruleLabels } },
                spec: prometheusRuleSpec(args.databases),
            }, { parent: this });
        }
        if (m.dashboard) {
            new k8s.core.v1.ConfigMap(`${name}-dashboard`, {
                metadata: { name: `${args.namePrefix}-dashboard`, namespace: m.dashboardNamespace, labels: { ...labels("monitoring"), ...m.dashboardLabels } },
                data: { "kx-backup.json": JSON.stringify(grafanaDashboard(args.databases)) },
            }, { parent: this });
        }
        this.registerOutputs({});
    }
}
