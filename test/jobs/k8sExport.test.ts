/** archive --kubernetes-namespace against a local HTTP server standing in for the Kubernetes API. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, S3Emulator, startS3 } from "../../jobs/dev/services";
import { portable } from "../../jobs/src/k8sExport";
import { logLines, runCli } from "../helpers/cli";

let api: http.Server;
let apiUrl: string;
let s3: S3Emulator;
let work: string;
let tokenFile: string;
let version = 1;
const seenAuth: string[] = [];

beforeAll(async () => {
    s3 = await startS3();
    work = mkdtempSync(path.join(os.tmpdir(), "kx-k8s-test-"));
    tokenFile = path.join(work, "token");
    writeFileSync(tokenFile, "sa-token-123\n");
    const port = await freePort();
    api = http.createServer((req, res) => {
        seenAuth.push(String(req.headers.authorization));
        const items = req.url === "/api/v1/namespaces/krystalinex/configmaps"
            ? [{ metadata: { name: "kong-conf", namespace: "krystalinex", uid: `u${version}`, resourceVersion: String(version), managedFields: [{}], creationTimestamp: "2026-01-01T00:00:00Z" }, data: { "kong.yml": `v${version === 3 ? 2 : 1}` } }]
            : req.url === "/api/v1/namespaces/krystalinex/secrets"
                ? [{ metadata: { name: "db-passwords", namespace: "krystalinex", resourceVersion: String(version) }, type: "Opaque", data: { password: "c2VjcmV0" } }]
                : undefined;
        if (!items) {
            res.writeHead(403).end(JSON.stringify({ message: "forbidden" }));
            return;
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ items }));
    });
    await new Promise<void>((r) => api.listen(port, "127.0.0.1", r));
    apiUrl = `http://127.0.0.1:${port}`;
}, 60_000);

afterAll(async () => {
    await s3?.stop();
    await new Promise<void>((r) => api.close(() => r()));
    rmSync(work, { recursive: true, force: true });
});

const env = () => ({ ...s3.env(), BACKUP_S3_PREFIX: "cfg", BACKUP_LOCAL_DIR: path.join(work, "local"), BACKUP_K8S_API_URL: apiUrl, BACKUP_K8S_TOKEN_FILE: tokenFile, BACKUP_PRUNE: "false" });

describe("configuration export", () => {
    it("exports ConfigMaps and Secrets with the ServiceAccount token, to encrypted targets only, and only on change", async () => {
        const first = await runCli(["archive", "--name", "k8s-config", "--kubernetes-namespace", "krystalinex", "--if-changed"], env());
        expect(first.code, first.stderr).toBe(0);
        expect(seenAuth.every((a) => a === "Bearer sa-token-123")).toBe(true);
        const lines = logLines(first.stderr);
        expect(lines.find((l) => l.event === "archive.local-skipped")?.level).toBe("warn");
        expect(lines.find((l) => l.event === "archive.export")?.msg).toBe("exported namespace krystalinex: 1 configmaps, 1 secrets");
        expect(lines.find((l) => l.event === "archive.done")?.msg).toMatch(/to s3$/);
        expect(readdirSync(work)).not.toContain("local");

        // Only volatile metadata changed: nothing to upload.
        version = 2;
        const second = await runCli(["archive", "--name", "k8s-config", "--kubernetes-namespace", "krystalinex", "--if-changed"], env());
        expect(second.code, second.stderr).toBe(0);
        expect(logLines(second.stderr).some((l) => l.event === "archive.unchanged")).toBe(true);

        // The data changed: a new archive, whose content restores the objects.
        await new Promise((r) => setTimeout(r, 1100));
        version = 3;
        const third = await runCli(["archive", "--name", "k8s-config", "--kubernetes-namespace", "krystalinex", "--if-changed"], env());
        expect(third.code, third.stderr).toBe(0);
        expect(logLines(third.stderr).some((l) => l.event === "archive.done")).toBe(true);
        const into = path.join(work, "restored");
        const restored = await runCli(["restore-archive", "--name", "k8s-config", "--into", into], { ...s3.env(), BACKUP_S3_PREFIX: "cfg" });
        expect(restored.code, restored.stderr).toBe(0);
        expect(JSON.parse(readFileSync(path.join(into, "configmaps", "kong-conf.json"), "utf8"))).toEqual({
            apiVersion: "v1", kind: "ConfigMap", metadata: { name: "kong-conf", namespace: "krystalinex" }, data: { "kong.yml": "v2" },
        });
        expect(JSON.parse(readFileSync(path.join(into, "secrets", "db-passwords.json"), "utf8")).data).toEqual({ password: "c2VjcmV0" });
        expect(execFileSync("stat", ["-c", "%a", path.join(into, "secrets", "db-passwords.json")]).toString().trim()).toBe("600");
    }, 60_000);

    it("needs an encrypted target and says so", async () => {
        const r = await runCli(["archive", "--name", "k8s-config", "--kubernetes-namespace", "krystalinex"], { BACKUP_LOCAL_DIR: path.join(work, "l2"), BACKUP_K8S_API_URL: apiUrl, BACKUP_K8S_TOKEN_FILE: tokenFile });
        expect(r.code).toBe(2);
        expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(/needs an encrypted target/);
    });

    it("names RBAC when the API refuses, and leaves no export behind", async () => {
        const workDir = mkdtempSync(path.join(work, "wd-"));
        const r = await runCli(["archive", "--name", "k8s-config", "--kubernetes-namespace", "other"], { ...env(), BACKUP_WORK_DIR: workDir });
        expect(readdirSync(workDir)).toEqual([]);
        expect(r.code).toBe(1);
        expect(logLines(r.stderr).find((l) => l.level === "error")?.msg).toMatch(/Kubernetes API 403 for \/api\/v1\/namespaces\/other\/configmaps: the ServiceAccount may not list this kind \(RBAC\)/);
    });

    it("keeps only restorable fields, in a stable order", () => {
        const a = portable("Secret", { data: { b: "1", a: "2" }, type: "Opaque", metadata: { uid: "x", name: "s", namespace: "n", annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" } } });
        expect(JSON.stringify(a)).toBe('{"apiVersion":"v1","data":{"a":"2","b":"1"},"kind":"Secret","metadata":{"name":"s","namespace":"n"},"type":"Opaque"}');
    });
});
