/**
 * Deployed observability: the alert rules and the dashboard, rendered for dev's and prod's config
 * (pure), and as the prod stack deploys them (mocks). The rules must watch exactly the metric
 * names the job pushes, with the thresholds each database's jobs get in their env.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { StackConfig } from "../../components/config";
import { grafanaDashboard, prometheusRuleSpec } from "../../components/monitoring";
import { lastFailureMetric, METRICS } from "../../jobs/src/metricNames";
import { metricsFor } from "../../jobs/src/notify";
import { runStack, StackRun } from "../helpers/pulumiMocks";
import { validatedFrom } from "../helpers/stackFiles";

const metricNames = (text: string) => [...new Set(text.match(/\bkx_backup_[a-z_]+\b/g) ?? [])].sort();

/** What the job pushes, from its own code: successes and failures of backup and verify. */
function pushedByTheJob(): Set<string> {
    const now = new Date();
    const events = [
        { command: "backup", ok: true }, { command: "verify", ok: true },
        { command: "backup", ok: false }, { command: "verify", ok: false },
    ] as const;
    // Details as the CLI gives them (cli.ts): a verify names the copy it timed.
    const details = { target: "s3", restoreDurationMs: 1000, restoreEndToEndMs: 2000, bytes: 1, durationMs: 1 };
    return new Set(events.flatMap((e) => metricsFor({ ...e, database: "kong", message: "", details }, now).map((m) => m.name)));
}

describe.each([["Pulumi.dev.yaml", "dev"], ["Pulumi.prod.yaml", "prod"]])("alerts and dashboard for %s", (file, stack) => {
    let config: StackConfig;
    beforeAll(() => {
        config = validatedFrom(file, stack);
    });

    it("has every alert per database (RPO, verify age, backup and verify failing, anomaly, RTO), with that database's thresholds", () => {
        const spec = prometheusRuleSpec(config.databases);
        expect(spec.groups.map((g) => g.name)).toEqual(config.databases.map((d) => `kx-backup-${d.name}`));
        for (const db of config.databases) {
            const rules = Object.fromEntries(spec.groups.find((g) => g.name === `kx-backup-${db.name}`)!.rules.map((r) => [r.alert, r]));
            const sel = `{job="kx_backup",database="${db.name}"}`;
            expect(rules.KxBackupOlderThanRPO.expr).toBe(`(time() - kx_backup_last_success_timestamp_seconds${sel} > ${db.rpoHours * 3600}) or absent(kx_backup_last_success_timestamp_seconds${sel})`);
            expect(rules.KxBackupVerifyTooOld.expr).toBe(`(time() - kx_backup_last_verified_timestamp_seconds${sel} > ${db.verifyMaxAgeDays * 86400}) or absent(kx_backup_last_verified_timestamp_seconds${sel})`);
            expect(rules.KxBackupFailing.expr).toContain(`kx_backup_backup_last_failure_timestamp_seconds${sel} > on(job, database) kx_backup_last_success_timestamp_seconds${sel}`);
            expect(rules.KxBackupVerifyFailing.expr).toContain(`kx_backup_verify_last_failure_timestamp_seconds${sel} > on(job, database) kx_backup_last_verified_timestamp_seconds${sel}`);
            expect(rules.KxBackupAnomaly.expr).toBe(`kx_backup_anomaly${sel} > 0`);
            expect(rules.KxBackupRestoreOverRTO.expr).toBe(`kx_backup_verify_restore_duration_seconds${sel} > ${db.rtoMinutes * 60}`);
            // One series per copy (notify.ts): the alert says which copy's restore is over.
            expect(rules.KxBackupRestoreOverRTO.annotations.summary).toContain("{{ $labels.target }}");
            for (const r of Object.values(rules)) {
                expect(r.labels).toEqual({ severity: db.criticality === "critical" ? "critical" : "warning", database: db.name, criticality: db.criticality });
            }
        }
    });

    it("watches only metric names the job pushes (jobs/src/metricNames.ts, as notify.ts pushes them)", () => {
        const used = metricNames(JSON.stringify(prometheusRuleSpec(config.databases)));
        const pushed = pushedByTheJob();
        expect(used.filter((n) => !pushed.has(n))).toEqual([]);
        expect(used).toEqual([
            METRICS.anomaly, lastFailureMetric("backup"), METRICS.lastSuccess, METRICS.lastVerified, lastFailureMetric("verify"), METRICS.verifyRestoreDuration,
        ].sort());
        expect(pushed).toEqual(new Set([METRICS.anomaly, METRICS.lastSuccess, METRICS.duration, METRICS.size, METRICS.lastVerified, METRICS.verifyRestoreDuration, lastFailureMetric("backup"), lastFailureMetric("verify")]));
    });

    it("draws backup age against each RPO, restore time against each RTO, size and duration", () => {
        const dashboard = grafanaDashboard(config.databases) as { panels: { title: string; targets: { expr: string; legendFormat: string }[] }[] };
        const panel = (title: string) => dashboard.panels.find((p) => p.title === title)!;
        for (const db of config.databases) {
            const sel = `{job="kx_backup",database="${db.name}"}`;
            expect(panel("Backup age / RPO").targets).toContainEqual(expect.objectContaining({ expr: `(time() - kx_backup_last_success_timestamp_seconds${sel}) / ${db.rpoHours * 3600}`, legendFormat: db.name }));
            expect(panel("Restore time / RTO").targets).toContainEqual(expect.objectContaining({ expr: `kx_backup_verify_restore_duration_seconds${sel} / ${db.rtoMinutes * 60}`, legendFormat: `${db.name} {{target}}` }));
        }
        expect(panel("Backup size").targets[0].expr).toBe(`${METRICS.size}{job="kx_backup"}`);
        expect(panel("Backup duration").targets[0].expr).toBe(`${METRICS.duration}{job="kx_backup"}`);
        expect(metricNames(JSON.stringify(dashboard)).filter((n) => !pushedByTheJob().has(n))).toEqual([]);
    });
});

describe("the prod stack deploys them", () => {
    let run: StackRun;
    let config: StackConfig;
    beforeAll(async () => {
        config = validatedFrom("Pulumi.prod.yaml", "prod");
        run = await runStack("Pulumi.prod.yaml", { stack: "prod" });
    }, 60_000);

    it("as a PrometheusRule the operator selects, with the rules rendered from the config", () => {
        const rule = run.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule");
        expect(rule.inputs.apiVersion).toBe("monitoring.coreos.com/v1");
        expect(rule.inputs.metadata).toMatchObject({ name: "kx-backup-alerts", namespace: "krystalinex", labels: { release: "kube-prometheus-stack" } });
        expect(rule.inputs.spec).toEqual(prometheusRuleSpec(config.databases));
    });

    it("as a ConfigMap the Grafana sidecar picks up", () => {
        const cm = run.one("kubernetes:core/v1:ConfigMap");
        expect(cm.inputs.metadata).toMatchObject({ name: "kx-backup-dashboard", namespace: "monitoring", labels: { grafana_dashboard: "1" } });
        expect(JSON.parse(cm.inputs.data["kx-backup.json"])).toEqual(grafanaDashboard(config.databases));
    });

    it("with the Pushgateway URL in every job", () => {
        for (const job of run.byType("kubernetes:batch/v1:CronJob")) {
            const env = job.inputs.spec.jobTemplate.spec.template.spec.containers[0].env;
            expect(env, job.inputs.metadata.name).toContainEqual({ name: "BACKUP_PUSHGATEWAY_URL", value: "http://prometheus-pushgateway.monitoring.svc:9091" });
        }
    });
});
