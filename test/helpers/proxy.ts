/**
 * An HTTP proxy in front of an S3 or Azure emulator that can hold part/block uploads (so a test
 * can act while an upload is provably in flight) and records the multipart uploads it saw
 * created, completed and aborted (s3rver cannot list them itself).
 */
import * as http from "http";
import { freePort } from "../../jobs/dev/services";

export interface GateProxy {
    endpoint: string;
    /** Resolves when the first part (S3) or block (Azure) upload arrives and is held. */
    firstHeld: Promise<void>;
    /** Lets held and future requests through. */
    release(): void;
    multipart: { created: Set<string>; completed: Set<string>; aborted: Set<string> };
    close(): Promise<void>;
}

function isChunkUpload(req: http.IncomingMessage): boolean {
    const url = req.url ?? "";
    return req.method === "PUT" && (/[?&]partNumber=/.test(url) || /[?&]comp=block(&|$)/.test(url));
}

export async function gateProxy(upstreamEndpoint: string): Promise<GateProxy> {
    const upstream = new URL(upstreamEndpoint);
    let released = false;
    const waiting: (() => void)[] = [];
    let onFirst: () => void = () => undefined;
    const firstHeld = new Promise<void>((r) => (onFirst = r));
    const multipart = { created: new Set<string>(), completed: new Set<string>(), aborted: new Set<string>() };
    const sockets = new Set<import("net").Socket>();

    const forward = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
        const url = req.url ?? "";
        const up = http.request({ host: upstream.hostname, port: upstream.port, path: url, method: req.method, headers: req.headers }, (r) => {
            const chunks: Buffer[] = [];
            r.on("data", (c: Buffer) => chunks.push(c));
            r.on("end", () => {
                const text = Buffer.concat(chunks);
                const ok = (r.statusCode ?? 500) < 300;
                const id = /[?&]uploadId=([^&]+)/.exec(url)?.[1];
                if (ok && req.method === "POST" && /[?&]uploads(=|&|$)/.test(url)) {
                    const created = /<UploadId>([^<]+)<\/UploadId>/.exec(text.toString())?.[1];
                    if (created) {
                        multipart.created.add(created);
                    }
                } else if (ok && req.method === "POST" && id) {
                    multipart.completed.add(decodeURIComponent(id));
                } else if (ok && req.method === "DELETE" && id) {
                    multipart.aborted.add(decodeURIComponent(id));
                }
                res.writeHead(r.statusCode ?? 502, r.headers);
                res.end(text);
            });
        });
        up.on("error", () => res.destroy());
        up.end(body);
    };

    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("error", () => undefined);
        req.on("end", () => {
            const body = Buffer.concat(chunks);
            if (!released && isChunkUpload(req)) {
                onFirst();
                waiting.push(() => forward(req, res, body));
                return;
            }
            forward(req, res, body);
        });
    });
    server.on("connection", (s) => {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    return {
        endpoint: `http://127.0.0.1:${port}`,
        firstHeld,
        multipart,
        release() {
            released = true;
            waiting.splice(0).forEach((go) => go());
        },
        close() {
            released = true;
            waiting.splice(0).forEach((go) => go());
            sockets.forEach((s) => s.destroy());
            return new Promise((r) => server.close(() => r()));
        },
    };
}

/** A local webhook receiver: collects the JSON bodies kx-backup posts. */
export async function webhookSink(): Promise<{ url: string; events: Record<string, any>[]; close(): Promise<void> }> {
    const events: Record<string, any>[] = [];
    const server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
            try {
                events.push(JSON.parse(body));
            } catch {
                events.push({ raw: body });
            }
            res.writeHead(200);
            res.end();
        });
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    return { url: `http://127.0.0.1:${port}/hook`, events, close: () => new Promise((r) => server.close(() => r())) };
}
