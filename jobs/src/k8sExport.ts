/**
 * Exports a namespace's ConfigMaps and Secrets through the Kubernetes API into a directory, one
 * JSON file per object, keeping only what a restore needs (no uid, resourceVersion, managed
 * fields or timestamps), so an unchanged namespace exports byte-identical files and
 * `archive --if-changed` can skip it.
 */
import { existsSync, promises as fs, readFileSync } from "fs";
import * as https from "https";
import * as http from "http";
import * as path from "path";
import { JobError } from "./log";
import { Settings } from "./settings";

export const EXPORTED_KINDS = [
    { kind: "ConfigMap", plural: "configmaps", folder: "configmaps" },
    { kind: "Secret", plural: "secrets", folder: "secrets" },
] as const;

type Obj = Record<string, any>;

/** What is kept of an object: stable, restorable with kubectl apply. Pure. */
export function portable(kind: string, o: Obj): Obj {
    const annotations = { ...(o.metadata?.annotations ?? {}) };
    delete annotations["kubectl.kubernetes.io/last-applied-configuration"];
    const out: Obj = {
        apiVersion: "v1",
        kind,
        metadata: {
            name: o.metadata?.name,
            namespace: o.metadata?.namespace,
            ...(o.metadata?.labels ? { labels: o.metadata.labels } : {}),
            ...(Object.keys(annotations).length ? { annotations } : {}),
        },
    };
    for (const k of ["type", "immutable", "data", "binaryData", "stringData"]) {
        if (o[k] !== undefined) {
            out[k] = o[k];
        }
    }
    return sortKeys(out) as Obj;
}

/** Objects with their keys in a fixed order at every level, so equal content serializes equally. */
function sortKeys(v: unknown): unknown {
    if (Array.isArray(v)) {
        return v.map(sortKeys);
    }
    if (v && typeof v === "object") {
        return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Obj)[k])]));
    }
    return v;
}

function apiBase(s: Settings): string {
    if (s.k8sApiUrl) {
        return s.k8sApiUrl.replace(/\/$/, "");
    }
    const host = process.env.KUBERNETES_SERVICE_HOST;
    const port = process.env.KUBERNETES_SERVICE_PORT ?? "443";
    if (!host) {
        throw new JobError("not in a Kubernetes pod: set BACKUP_K8S_API_URL (and BACKUP_K8S_TOKEN_FILE) to export a namespace", 2);
    }
    return `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

function get(url: string, token: string, ca: Buffer | undefined): Promise<Obj> {
    return new Promise((resolve, reject) => {
        const lib = url.startsWith("https:") ? https : http;
        const req = lib.get(url, { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" }, ...(ca ? { ca } : {}), timeout: 30_000 }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (body += d));
            res.on("end", () => {
                if (res.statusCode !== 200) {
                    reject(new JobError(`Kubernetes API ${res.statusCode} for ${new URL(url).pathname}: ${res.statusCode === 403 ? "the ServiceAccount may not list this kind (RBAC)" : body.slice(0, 200)}`));
                    return;
                }
                try {
                    resolve(JSON.parse(body));
                } catch (e) {
                    reject(e);
                }
            });
        });
        req.on("timeout", () => req.destroy(new Error("timed out")));
        req.on("error", (e) => reject(new JobError(`Kubernetes API unreachable at ${new URL(url).origin}: ${e.message}`)));
    });
}

/** Writes every ConfigMap and Secret of the namespace under `dir`; returns how many of each. */
export async function exportNamespace(s: Settings, namespace: string, dir: string): Promise<Record<string, number>> {
    const base = apiBase(s);
    if (!existsSync(s.k8sTokenFile)) {
        throw new JobError(`no ServiceAccount token at ${s.k8sTokenFile}: set BACKUP_K8S_TOKEN_FILE`, 2);
    }
    const token = readFileSync(s.k8sTokenFile, "utf8").trim();
    const ca = base.startsWith("https:") && existsSync(s.k8sCaFile) ? readFileSync(s.k8sCaFile) : undefined;
    const counts: Record<string, number> = {};
    for (const { kind, plural, folder } of EXPORTED_KINDS) {
        const list = await get(`${base}/api/v1/namespaces/${encodeURIComponent(namespace)}/${plural}`, token, ca);
        const items: Obj[] = list.items ?? [];
        await fs.mkdir(path.join(dir, folder), { recursive: true });
        for (const item of items) {
            const name = String(item.metadata?.name ?? "");
            if (!/^[a-z0-9.-]+$/.test(name)) {
                continue;
            }
            await fs.writeFile(path.join(dir, folder, `${name}.json`), `${JSON.stringify(portable(kind, item), null, 2)}\n`, { mode: 0o600 });
        }
        counts[plural] = items.length;
    }
    return counts;
}
