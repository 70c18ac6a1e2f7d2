/**
 * A value reader that records problems with the config key they belong to, so validation reports
 * every problem at once, each naming the key, the value and what is allowed.
 */
import { parseCron } from "../cron";

export const PROJECT = "krystalinex-backup";

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
    }
}

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const QUANTITY = /^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/;
export const AWS_REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;
export const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;
/** Kubernetes label keys (optional DNS prefix) and values. */
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export function show(v: unknown): string {
    return v === undefined ? "nothing" : JSON.stringify(v);
}

export class Reader {
    readonly problems: string[] = [];

    fail(key: string, value: unknown, allowed: string): undefined {
        this.problems.push(`${PROJECT}:${key}: got ${show(value)}; allowed: ${allowed}`);
        return undefined;
    }

    object(key: string, v: unknown, known: readonly string[], renamed: Record<string, string> = {}): Record<string, unknown> | undefined {
        if (typeof v !== "object" || v === null || Array.isArray(v)) {
            return this.fail(key, v, "an object");
        }
        for (const k of Object.keys(v)) {
            if (renamed[k] !== undefined) {
                this.fail(`${key}.${k}`, (v as Record<string, unknown>)[k], `no such key: ${renamed[k]}`);
            } else if (!known.includes(k)) {
                this.fail(`${key}.${k}`, (v as Record<string, unknown>)[k], `no such key (known: ${known.join(", ")})`);
            }
        }
        return v as Record<string, unknown>;
    }

    string(key: string, v: unknown, pattern?: RegExp, allowed = "a string"): string | undefined {
        if (typeof v !== "string" || v === "" || (pattern && !pattern.test(v))) {
            return this.fail(key, v, allowed);
        }
        return v;
    }

    int(key: string, v: unknown, min: number, max: number, what: string): number | undefined {
        if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
            return this.fail(key, v, `${what}: a whole number from ${min} to ${max}`);
        }
        return v;
    }

    port(key: string, v: unknown, what: string): number | undefined {
        return this.int(key, v, 1, 65535, what);
    }

    bool(key: string, v: unknown): boolean | undefined {
        if (typeof v !== "boolean") {
            return this.fail(key, v, "true or false");
        }
        return v;
    }

    oneOf<T extends string>(key: string, v: unknown, values: readonly T[]): T | undefined {
        if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
            return this.fail(key, v, values.join(" | "));
        }
        return v as T;
    }

    cron(key: string, v: unknown): string | undefined {
        if (typeof v !== "string") {
            return this.fail(key, v, "a 5-field cron expression such as \"0 */6 * * *\"");
        }
        try {
            parseCron(v);
            return v;
        } catch (e) {
            return this.fail(key, v, `a 5-field cron expression Kubernetes accepts (${(e as Error).message})`);
        }
    }

    /** A map of Kubernetes labels. */
    labels(key: string, v: unknown): Record<string, string> | undefined {
        if (typeof v !== "object" || v === null || Array.isArray(v)) {
            return this.fail(key, v, "a map of Kubernetes labels, e.g. {release: kube-prometheus-stack}");
        }
        const out: Record<string, string> = {};
        for (const [k, value] of Object.entries(v)) {
            if (!LABEL_KEY.test(k) || typeof value !== "string" || !LABEL_VALUE.test(value)) {
                this.fail(`${key}.${k}`, value, "a Kubernetes label: key and a string value of at most 63 letters, digits, - _ .");
            } else {
                out[k] = value;
            }
        }
        return out;
    }
}
