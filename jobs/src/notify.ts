/**
 * Telling people and monitoring: ntfy (as the runbook's §6.2 step 3 does by hand), a generic JSON
 * webhook, and Prometheus Pushgateway metrics. Bounded retries; a failed notification is logged
 * and never changes the job's result.
 */
import { Logger } from "./log";
import { FailingCommand, lastFailureMetric, METRICS, PUSH_JOB } from "./metricNames";
import { Settings } from "./settings";
import { ByCopy, isTargetKind, measuredRestore } from "./restoreTimes";
import { TARGET_KINDS, TargetKind } from "./targets";

export interface Event {
    /** Every command that notifies (undelete included): one list, shared with the metric names. */
    command: FailingCommand;
    database?: string;
    ok: boolean;
    /** A success that needs a human now (an anomalous backup): notified like a failure. */
    urgent?: boolean;
    message: string;
    details?: Record<string, unknown>;
}

export interface Attempts {
    tries: number;
    /** Milliseconds before the second try; doubles after. */
    backoffMs: number;
    timeoutMs: number;
}

const DEFAULT_ATTEMPTS: Attempts = { tries: 3, backoffMs: 500, timeoutMs: 10_000 };

async function send(url: string, init: RequestInit, attempts: Attempts): Promise<void> {
    let last: unknown;
    for (let i = 0; i < attempts.tries; i++) {
        if (i > 0) {
            await new Promise((r) => setTimeout(r, attempts.backoffMs * 2 ** (i - 1)));
        }
        try {
            const res = await fetch(url, { ...init, signal: AbortSignal.timeout(attempts.timeoutMs) });
            if (res.ok) {
                return;
            }
            last = new Error(`HTTP ${res.status}`);
            if (res.status >= 400 && res.status < 500 && res.status !== 429) {
                break;
            }
        } catch (e) {
            last = e;
        }
    }
    throw last instanceof Error ? last : new Error(String(last));
}

/**
 * A header value any HTTP client sends: printable ASCII as is, anything else (a database named
 * `日本` or `Zoë`) as an RFC 2047 encoded word, which ntfy decodes. A raw non-Latin-1 character
 * makes fetch throw, and the failure notification would never leave. Pure.
 */
export function headerText(text: string): string {
    return /^[\x20-\x7e]*$/.test(text) ? text : `=?UTF-8?B?${Buffer.from(text, "utf8").toString("base64")}?=`;
}

/** ntfy headers as the runbook uses them: urgent with rotating_light on failure. */
export function ntfyRequest(e: Event, token?: string): RequestInit {
    const what = !e.ok ? "FAILED" : e.urgent ? "needs attention" : "ok";
    const title = `KrystalineX ${e.command} ${what}${e.database ? `: ${e.database}` : ""}`;
    const headers: Record<string, string> = {
        Title: headerText(title),
        Priority: e.ok && !e.urgent ? "default" : "urgent",
        Tags: !e.ok ? "rotating_light,floppy_disk" : e.urgent ? "warning,floppy_disk" : "white_check_mark,floppy_disk",
    };
    if (token) {
        headers.Authorization = `Bearer ${token}`;
    }
    return { method: "POST", headers, body: e.message };
}

export interface Metric {
    name: string;
    help: string;
    value: number;
    /** Label values here are target kinds and the like, never free text; escaped all the same. */
    labels?: Record<string, string>;
}

function labelText(labels: Record<string, string> | undefined): string {
    const pairs = Object.entries(labels ?? {}).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
    return pairs.length > 0 ? `{${pairs.join(",")}}` : "";
}

/** A sample value as the exposition format spells it ("+Inf", not JavaScript's "Infinity"). */
function sampleText(v: number): string {
    return Number.isNaN(v) ? "NaN" : v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v);
}

/** Prometheus text exposition for one database's group: one HELP and TYPE per name, then its series. */
export function metricsBody(metrics: Metric[]): string {
    const names = [...new Set(metrics.map((m) => m.name))];
    return names.map((name) => {
        const series = metrics.filter((m) => m.name === name);
        return `# HELP ${name} ${series[0].help}\n# TYPE ${name} gauge\n${series.map((m) => `${name}${labelText(m.labels)} ${sampleText(m.value)}\n`).join("")}`;
    }).join("");
}

export function metricsFor(e: Event, now: Date): Metric[] {
    const t = now.getTime() / 1000;
    const d = e.details ?? {};
    if (!e.ok) {
        return [{ name: lastFailureMetric(e.command), help: `Last failed ${e.command}.`, value: t }];
    }
    if (e.command === "backup") {
        if (d.scope !== undefined && d.scope !== "full") {
            // The RPO is about whole-database backups: a partial one must not look like one.
            return [];
        }
        return [
            { name: METRICS.anomaly, help: "1 when the last backup was flagged anomalous (a large drop in size or rows), else 0.", value: d.anomalous ? 1 : 0 },
            { name: METRICS.lastSuccess, help: "Last successful backup (alert when older than the RPO).", value: t },
            { name: METRICS.duration, help: "Duration of the last successful backup.", value: Number(d.durationMs ?? 0) / 1000 },
            { name: METRICS.size, help: "Size of the last successful backup.", value: Number(d.bytes ?? 0) },
        ];
    }
    if (e.command === "verify") {
        return [
            { name: METRICS.lastVerified, help: "Last successful restore test.", value: t },
            ...restoreSeries(d).map(([target, seconds]) => ({
                name: METRICS.verifyRestoreDuration,
                help: "Newest timed restore of each copy (target), end to end (fetch, checks, pg_restore, comparison): the measured RTO; +Inf when that record's time cannot be judged.",
                value: seconds,
                labels: { target },
            })),
        ];
    }
    return [];
}

/**
 * One series per copy: its newest timed restore, carried in the verify record (restoreTimes.ts).
 * All are pushed each time, as the push replaces every series of the name: a copy timed three
 * runs ago keeps its value (and its alert) until it is timed again. A time that cannot be judged
 * is +Inf: over any RTO, so its alert fires (as status calls it a problem) rather than the series
 * vanishing and the alert resolving.
 */
function restoreSeries(d: Record<string, unknown>): [TargetKind, number][] {
    const own: ByCopy = isTargetKind(d.target) ? { [d.target]: d } : {};
    const byCopy = (d.restoreByCopy && typeof d.restoreByCopy === "object" ? d.restoreByCopy : own) as ByCopy;
    return TARGET_KINDS.flatMap((k) => {
        if (!byCopy[k]) {
            return [];
        }
        const m = measuredRestore(byCopy[k]!);
        return [[k, "ms" in m ? m.ms / 1000 : Infinity] as [TargetKind, number]];
    });
}

export async function notify(s: Settings, e: Event, log: Logger, attempts: Attempts = DEFAULT_ATTEMPTS, now = new Date()): Promise<void> {
    const jobs: [string, () => Promise<void>][] = [];
    if (!e.ok || e.urgent || s.notifyOnSuccess) {
        if (s.ntfyUrl) {
            const url = s.ntfyUrl;
            jobs.push(["ntfy", () => send(url, ntfyRequest(e, s.ntfyToken), attempts)]);
        }
        if (s.webhookUrl) {
            const url = s.webhookUrl;
            const body = JSON.stringify({ source: "kx-backup", time: now.toISOString(), ...e });
            jobs.push(["webhook", () => send(url, { method: "POST", headers: { "content-type": "application/json" }, body }, attempts)]);
        }
    }
    if (s.pushgatewayUrl && e.database) {
        const metrics = metricsFor(e, now);
        if (metrics.length > 0) {
            // POST replaces only these metric names in the group: backup and verify keep each other's.
            const url = `${s.pushgatewayUrl.replace(/\/$/, "")}/metrics/job/${PUSH_JOB}/database/${encodeURIComponent(e.database)}`;
            jobs.push(["pushgateway", () => send(url, { method: "POST", headers: { "content-type": "text/plain; version=0.0.4" }, body: metricsBody(metrics) }, attempts)]);
        }
    }
    await Promise.all(jobs.map(async ([name, run]) => {
        try {
            await run();
            log.info(`${name} notified`, { event: "notify.sent", channel: name });
        } catch (err) {
            log.warn(`${name} notification failed (the ${e.command} result stands): ${(err as Error).message}`, { event: "notify.failed", channel: name });
        }
    }));
}
