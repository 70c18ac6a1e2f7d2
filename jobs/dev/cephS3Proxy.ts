/**
 * A small HTTP proxy in front of RGW that applies two rules AWS S3 enforces and RGW 16 does not,
 * so the client's handling of them is exercised against a real store:
 *
 * 1. Object Lock needs a checksum. On a bucket with a default retention (or a request carrying
 *    Object Lock headers), PutObject and UploadPart without Content-MD5 or an x-amz-checksum-*
 *    header (or trailer) fail: 400 InvalidRequest, "Content-MD5 OR x-amz-checksum- HTTP header
 *    is required for Put Object requests with Object Lock parameters".
 * 2. Conditional writes. PutObject and CompleteMultipartUpload with `If-None-Match: *` fail with
 *    412 PreconditionFailed when the key has a current object (RGW 16 ignores the header and
 *    overwrites). The check and the write run under a per-key lock, so two writers racing
 *    through the proxy see AWS's outcome: one wins, the other gets 412.
 *
 * It also records every request's method, path and checksum-related headers, for tests that
 * assert what the client sent. Path-style addressing only.
 */
import { GetObjectLockConfigurationCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import * as http from "http";
import { freePort } from "../src/ephemeral";

export interface RecordedRequest {
    method: string;
    bucket: string;
    key: string;
    query: URLSearchParams;
    headers: http.IncomingHttpHeaders;
    /** The proxy's answer when it refused the request itself. */
    refused?: number;
}

export interface S3RulesProxy {
    endpoint: string;
    requests: RecordedRequest[];
    close(): Promise<void>;
}

export interface UpstreamS3 {
    endpoint: string;
    accessKeyId: string;
    secretAccessKey: string;
    region: string;
}

const CHECKSUM_REQUIRED = "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters";

function awsError(res: http.ServerResponse, status: number, code: string, message: string, extra = ""): void {
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>kx-proxy</RequestId></Error>`;
    res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
    res.end(body);
}

function hasChecksum(h: http.IncomingHttpHeaders): boolean {
    return Boolean(h["content-md5"]) ||
        Object.keys(h).some((k) => k.startsWith("x-amz-checksum-") && k !== "x-amz-checksum-algorithm" && k !== "x-amz-checksum-type") ||
        String(h["x-amz-trailer"] ?? "").startsWith("x-amz-checksum-");
}

export async function startS3RulesProxy(upstream: UpstreamS3): Promise<S3RulesProxy> {
    const target = new URL(upstream.endpoint);
    const client = new S3Client({
        endpoint: upstream.endpoint,
        forcePathStyle: true,
        region: upstream.region,
        credentials: { accessKeyId: upstream.accessKeyId, secretAccessKey: upstream.secretAccessKey },
        maxAttempts: 1,
    });
    const lockRetention = new Map<string, Promise<boolean>>();
    const keyLocks = new Map<string, Promise<void>>();
    const requests: RecordedRequest[] = [];

    const defaultRetention = (bucket: string): Promise<boolean> => {
        if (!lockRetention.has(bucket)) {
            lockRetention.set(bucket, client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket })).then(
                (r) => r.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled" && Boolean(r.ObjectLockConfiguration.Rule?.DefaultRetention),
                () => false,
            ));
        }
        return lockRetention.get(bucket)!;
    };
    const exists = (bucket: string, key: string): Promise<boolean> =>
        client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(() => true, (e) => {
            if (e?.$metadata?.httpStatusCode === 404) {
                return false;
            }
            throw e;
        });
    /** Runs `fn` alone for this key; resolves when `fn`'s returned promise (the forwarded response) settles. */
    const exclusive = async (id: string, fn: () => Promise<void>): Promise<void> => {
        while (keyLocks.has(id)) {
            await keyLocks.get(id)!.catch(() => undefined);
        }
        const p = fn();
        keyLocks.set(id, p);
        try {
            await p;
        } finally {
            keyLocks.delete(id);
        }
    };
    const forward = (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> =>
        new Promise((resolve) => {
            const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
                res.writeHead(answer.statusCode ?? 502, answer.headers);
                answer.pipe(res);
                answer.on("end", resolve);
                answer.on("error", () => resolve());
            });
            up.on("error", () => {
                res.destroy();
                resolve();
            });
            req.pipe(up);
        });

    const server = http.createServer((req, res) => {
        void (async () => {
            const url = new URL(req.url ?? "/", "http://proxy");
            const [, bucket = "", ...rest] = url.pathname.split("/");
            const key = decodeURIComponent(rest.join("/"));
            const q = url.searchParams;
            const record: RecordedRequest = { method: req.method ?? "", bucket, key, query: q, headers: req.headers };
            requests.push(record);
            const objectWrite = req.method === "PUT" && key !== "" && !req.headers["x-amz-copy-source"];
            const isPart = objectWrite && q.has("partNumber") && q.has("uploadId");
            // The SDK adds ?x-id=PutObject; any other parameter is a sub-resource (?tagging, ?retention…).
            const isPut = objectWrite && [...q.keys()].every((k) => k === "x-id");
            const isComplete = req.method === "POST" && key !== "" && q.has("uploadId");
            const lockHeaders = Object.keys(req.headers).some((h) => h.startsWith("x-amz-object-lock-"));
            if ((isPut || isPart) && !hasChecksum(req.headers) && (lockHeaders || (await defaultRetention(bucket)))) {
                record.refused = 400;
                req.resume();
                awsError(res, 400, "InvalidRequest", CHECKSUM_REQUIRED);
                return;
            }
            if ((isPut || isComplete) && req.headers["if-none-match"] === "*") {
                await exclusive(`${bucket}/${key}`, async () => {
                    if (await exists(bucket, key)) {
                        record.refused = 412;
                        req.resume();
                        awsError(res, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", "<Condition>If-None-Match</Condition>");
                        return;
                    }
                    await forward(req, res);
                });
                return;
            }
            await forward(req, res);
        })().catch((e) => awsError(res, 500, "InternalError", `kx proxy: ${(e as Error).message}`));
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    return {
        endpoint: `http://127.0.0.1:${port}`,
        requests,
        close: () =>
            new Promise((r) => {
                server.closeAllConnections();
                server.close(() => r());
                client.destroy();
            }),
    };
}
