/**
 * The Grafana dashboard, as JSON: backup age against each database's RPO, restore time against
 * its RTO, and size and duration over time. Pure; the metric names come from the job's module.
 * Age and restore time are drawn as a fraction of the database's own objective, so one red line
 * at 100 % is every database's threshold.
 */
import { METRICS, PUSH_JOB } from "../../jobs/src/metricNames";
import type { DatabaseConfig } from "../config";
import { seriesSelector } from "./rules";

interface Target {
    refId: string;
    expr: string;
    legendFormat: string;
}

interface Panel {
    id: number;
    type: "timeseries";
    title: string;
    description: string;
    gridPos: { x: number; y: number; w: number; h: number };
    datasource: { type: "prometheus"; uid: "${datasource}" };
    targets: Target[];
    fieldConfig: {
        defaults: {
            unit: string;
            thresholds?: { mode: "absolute"; steps: { color: string; value: number | null }[] };
            custom?: { thresholdsStyle: { mode: "line" } };
        };
        overrides: never[];
    };
}

const refIds = (i: number) => String.fromCharCode(65 + (i % 26)) + (i >= 26 ? String(Math.floor(i / 26)) : "");

function panel(id: number, title: string, description: string, unit: string, targets: Target[], y: number, x: number, threshold?: number): Panel {
    return {
        id,
        type: "timeseries",
        title,
        description,
        gridPos: { x, y, w: 12, h: 8 },
        datasource: { type: "prometheus", uid: "${datasource}" },
        targets,
        fieldConfig: {
            defaults: threshold === undefined
                ? { unit }
                : {
                    unit,
                    thresholds: { mode: "absolute", steps: [{ color: "green", value: null }, { color: "red", value: threshold }] },
                    custom: { thresholdsStyle: { mode: "line" } },
                },
            overrides: [],
        },
    };
}

export function grafanaDashboard(databases: readonly DatabaseConfig[]): Record<string, unknown> {
    const perDb = (expr: (db: DatabaseConfig) => string, legend = (db: DatabaseConfig) => db.name) =>
        databases.map((db, i) => ({ refId: refIds(i), expr: expr(db), legendFormat: legend(db) }));
    const all = `{job="${PUSH_JOB}"}`;
    return {
        uid: "kx-backup",
        title: "KrystalineX backups",
        tags: ["kx-backup", "backup", "postgresql"],
        timezone: "utc",
        schemaVersion: 39,
        refresh: "5m",
        time: { from: "now-7d", to: "now" },
        templating: {
            list: [{ name: "datasource", type: "datasource", query: "prometheus", label: "Prometheus" }],
        },
        panels: [
            panel(1, "Backup age / RPO", "Time since the newest successful backup, as a fraction of the database's RPO: above 100 % the RPO is missed.", "percentunit",
                perDb((db) => `(time() - ${METRICS.lastSuccess}${seriesSelector(db.name)}) / ${db.rpoHours * 3600}`), 0, 0, 1),
            panel(2, "Restore time / RTO", "Newest timed restore of each copy (local, S3, Azure), end to end, as a fraction of the database's RTO: above 100 % a real restore from that copy would miss it.", "percentunit",
                perDb((db) => `${METRICS.verifyRestoreDuration}${seriesSelector(db.name)} / ${db.rtoMinutes * 60}`, (db) => `${db.name} {{target}}`), 0, 12, 1),
            panel(3, "Backup size", "Size of each database's newest backup: a sudden drop is what the anomaly guard flags.", "bytes",
                [{ refId: "A", expr: `${METRICS.size}${all}`, legendFormat: "{{database}}" }], 8, 0),
            panel(4, "Backup duration", "How long each database's newest backup took.", "s",
                [{ refId: "A", expr: `${METRICS.duration}${all}`, legendFormat: "{{database}}" }], 8, 12),
        ],
    };
}
