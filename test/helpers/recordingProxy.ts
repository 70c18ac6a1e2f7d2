/** An HTTP proxy that records what a client really sends (method, URL, headers, body hashes) before passing it on. */
import { createHash } from "crypto";
import * as http from "http";
import { freePort } from "../../jobs/dev/services";

export interface Seen {
    method: string;
    url: URL;
    headers: http.IncomingHttpHeaders;
    bytes: number;
    md5: string;
    sha256: string;
    /** The body as text when it is small (XML bodies: CompleteMultipartUpload, Put Block List). */
    text?: string;
}

export interface RecordingProxy {
    endpoint: string;
    seen: Seen[];
    close(): Promise<void>;
}

export async function recordingProxy(upstream: string): Promise<RecordingProxy> {
    const target = new URL(upstream);
    const seen: Seen[] = [];
    const server = http.createServer((req, res) => {
        const md5 = createHash("md5");
        const sha = createHash("sha256");
        const small: Buffer[] = [];
        let bytes = 0;
        req.on("data", (c: Buffer) => {
            md5.update(c);
            sha.update(c);
            bytes += c.length;
            if (bytes <= 64 * 1024) {
                small.push(c);
            }
        });
        req.on("end", () => {
            seen.push({
                method: req.method ?? "",
                url: new URL(req.url ?? "/", upstream),
                headers: req.headers,
                bytes,
                md5: md5.digest("base64"),
                sha256: sha.digest("base64"),
                text: bytes <= 64 * 1024 ? Buffer.concat(small).toString("utf8") : undefined,
            });
        });
        const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
        });
        up.on("error", () => res.destroy());
        req.pipe(up);
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    return {
        endpoint: `http://127.0.0.1:${port}`,
        seen,
        close: () =>
            new Promise((r) => {
                server.closeAllConnections();
                server.close(() => r());
            }),
    };
}
