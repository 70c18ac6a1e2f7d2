import {
    AbortMultipartUploadCommand,
    CompletedPart,
    CompleteMultipartUploadCommand,
    CreateMultipartUploadCommand,
    DeleteObjectCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListObjectsV2Command,
    PutObjectCommand,
    S3Client,
    UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Readable } from "stream";
import { shutdownSignal } from "../shutdown";
import { digestOf, growthCeiling, Part, partedStream } from "./parts";
import { stagedUpload } from "./staged";
import { hiddenFromVersions, listAllVersions, S3HiddenHandle } from "./s3versions";
import { UploadBudget } from "../uploadBudget";
import { chunkSize, DeleteOutcome, partsGrownWarning, HiddenObject, ObjectExistsError, PutOptions, StoredObject, Target, Upload, UploadOptions } from "./target";

export interface S3TargetOptions {
    bucket: string;
    prefix: string;
    region?: string;
    endpoint?: string;
    forcePathStyle?: boolean;
    credentials?: { accessKeyId: string; secretAccessKey: string };
    /** Attempts per request (parts included) before the upload fails. Default: 5. */
    maxAttempts?: number;
    /** The memory budget shared with the other targets (uploadBudget.ts); without one, the sizes below. */
    budget?: UploadBudget;
    /** S3's part limits (S3_PART_LIMITS); smaller ones only in tests, to reach the limit cheaply. */
    partLimits?: typeof S3_PART_LIMITS;
}

const MIB = 1024 * 1024;
/** S3: at most 10,000 parts of 5 MiB to 5 GiB. Parts start at the 5 MiB minimum: with two in flight plus one filling, that keeps peak memory lowest. */
export const S3_PART_LIMITS = { maxParts: 10_000, min: 5 * MIB, max: 5 * 1024 * MIB };

/** Object metadata naming the run that wrote an object (`x-amz-meta-kx-backup-run`). */
export const RUN_METADATA = "kx-backup-run";

type S3Error = Error & { name: string; $metadata?: { httpStatusCode?: number } };

/**
 * One SHA-256 of a body, used twice: as its checksum (x-amz-checksum-sha256, with
 * x-amz-sdk-checksum-algorithm: what S3 requires of every write under Object Lock) and as the
 * signed payload hash (x-amz-content-sha256: S3 recomputes it and refuses a body that differs),
 * which the SDK's signer would otherwise compute with a second pass over the bytes.
 */
export function signedSha256<C extends { middlewareStack: { add: (...a: any[]) => unknown } }>(command: C, digest: Buffer): C {
    const hex = digest.toString("hex");
    command.middlewareStack.add(
        (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => {
            const request = args.request as { headers?: Record<string, string> };
            if (request?.headers) {
                request.headers["x-amz-content-sha256"] = hex;
            }
            return next(args);
        },
        { step: "build", name: "kxSignedPayloadSha256" },
    );
    return command;
}

function status(e: unknown): number | undefined {
    return (e as S3Error)?.$metadata?.httpStatusCode;
}

/**
 * 412: the key exists (If-None-Match: *). 409 ConditionalRequestConflict: another writer of the
 * same key raced us. Either way the key is not ours to write.
 */
function isTaken(e: unknown): boolean {
    const name = (e as S3Error)?.name;
    return status(e) === 412 || name === "PreconditionFailed" || name === "ConditionalRequestConflict";
}

export class S3Target implements Target {
    readonly kind = "s3";
    readonly location: string;
    /** Exposed for request-level tests (middleware) and the undelete command. */
    readonly client: S3Client;
    readonly bucket: string;
    private readonly root: string;
    private readonly limits: typeof S3_PART_LIMITS;

    constructor(private readonly opts: S3TargetOptions) {
        this.limits = opts.partLimits ?? S3_PART_LIMITS;
        opts.budget?.join({ kind: this.kind, limits: this.limits, maxConcurrency: 4 });
        this.root = opts.prefix.replace(/^\/+|\/+$/g, "");
        this.bucket = opts.bucket;
        this.location = `s3://${opts.bucket}/${this.root}`;
        this.client = new S3Client({
            region: opts.region ?? (opts.endpoint ? "us-east-1" : undefined),
            endpoint: opts.endpoint,
            forcePathStyle: opts.forcePathStyle,
            credentials: opts.credentials,
            maxAttempts: opts.maxAttempts ?? 5,
            // Every write carries Content-MD5 and x-amz-checksum-sha256 that we compute on the
            // buffered body (S3 requires one of them with Object Lock). The SDK must add nothing:
            // its streamed aws-chunked trailing checksums are refused by RGW (411) and mis-stored
            // by s3rver.
            requestChecksumCalculation: "WHEN_REQUIRED",
            responseChecksumValidation: "WHEN_REQUIRED",
        });
    }

    private full(key: string): string {
        return this.root === "" ? key : `${this.root}/${key}`;
    }

    private relative(fullKey: string): string {
        return this.root === "" ? fullKey : fullKey.slice(this.root.length + 1);
    }

    upload(key: string, o: UploadOptions): Upload {
        const Bucket = this.bucket;
        const Key = this.full(key);
        const Metadata = o.runId ? { [RUN_METADATA]: o.runId } : undefined;
        const requests = new AbortController();
        const plan = this.opts.budget?.plan(this.kind, o.expectedBytes);
        const partSize = plan?.chunkBytes ?? chunkSize(o.expectedBytes, this.limits);
        let creating: Promise<string> | undefined;
        const parts: CompletedPart[] = [];
        let versionId: string | undefined;

        const createUpload = (): Promise<string> => {
            // Not tied to `requests`: an aborted create could still land on S3, unknown to us.
            creating ??= this.client
                .send(new CreateMultipartUploadCommand({ Bucket, Key, Metadata, ChecksumAlgorithm: "SHA256" }))
                .then((r) => r.UploadId!);
            return creating;
        };
        const sendPart = async (p: Part): Promise<void> => {
            const UploadId = await createUpload();
            const ChecksumSHA256 = p.digest.toString("base64");
            const r = await this.client.send(
                signedSha256(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: p.number, Body: p.body, ChecksumAlgorithm: "SHA256", ChecksumSHA256 }), p.digest),
                { abortSignal: requests.signal },
            );
            parts.push({ PartNumber: p.number, ETag: r.ETag, ChecksumSHA256 });
        };
        // Memory is about partSize × (queue + 2): keep big parts few in flight.
        const queue = plan?.concurrency ?? (partSize <= 16 * MIB ? 2 : 1);
        const stream = partedStream(partSize, queue, sendPart, {
            holdSingle: true,
            digest: "sha256",
            limits: this.limits,
            onGrow: (size, over) => o.warn?.(partsGrownWarning(this.kind, size, over)),
            maxHeldBytes: growthCeiling(partSize, queue),
        });

        return stagedUpload({
            sink: stream.sink,
            staged: stream.staged,
            requests,
            signal: o.signal ?? shutdownSignal,
            publish: async () => {
                const single = stream.single();
                try {
                    if (single) {
                        const r = await this.client.send(signedSha256(new PutObjectCommand({
                            Bucket, Key, Body: single.body, ChecksumAlgorithm: "SHA256", ChecksumSHA256: single.digest.toString("base64"), IfNoneMatch: "*", Metadata,
                        }), single.digest));
                        versionId = r.VersionId;
                    } else {
                        const UploadId = await createUpload();
                        const Parts = [...parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
                        const r = await this.client.send(new CompleteMultipartUploadCommand({
                            Bucket, Key, UploadId, IfNoneMatch: "*", MultipartUpload: { Parts },
                        }));
                        versionId = r.VersionId;
                    }
                } catch (e) {
                    throw isTaken(e) ? new ObjectExistsError(this.location, key) : e;
                }
            },
            unpublish: () => this.removeOwn(Key, versionId),
            unstage: async () => {
                const UploadId = await creating?.catch(() => undefined);
                if (UploadId) {
                    // S3 drops every part of it; the key itself is never touched. If this fails
                    // nothing is visible anyway, and the bucket's abort-incomplete-multipart
                    // rule removes the parts.
                    await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
                }
            },
        });
    }

    /**
     * Removes the object an upload of this run created: exactly its version (unversioned: the
     * object it created). When Object Lock keeps that version, a delete marker at least hides it.
     */
    private async removeOwn(Key: string, versionId: string | undefined): Promise<void> {
        try {
            await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key, VersionId: versionId }));
        } catch (e) {
            if (versionId === undefined || status(e) !== 403) {
                throw e;
            }
            await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
        }
    }

    async putSmall(key: string, body: string, o: PutOptions = {}): Promise<void> {
        const Body = Buffer.from(body, "utf8");
        const digest = digestOf(Body, "sha256");
        try {
            await this.client.send(signedSha256(new PutObjectCommand({
                Bucket: this.bucket,
                Key: this.full(key),
                Body,
                ContentType: "application/json",
                ChecksumAlgorithm: "SHA256",
                ChecksumSHA256: digest.toString("base64"),
                IfNoneMatch: o.replace ? undefined : "*",
                Metadata: o.runId ? { [RUN_METADATA]: o.runId } : undefined,
            }), digest));
        } catch (e) {
            throw isTaken(e) ? new ObjectExistsError(this.location, key) : e;
        }
    }

    async list(prefix: string): Promise<StoredObject[]> {
        const out: StoredObject[] = [];
        let token: string | undefined;
        do {
            const page = await this.client.send(new ListObjectsV2Command({
                Bucket: this.bucket,
                Prefix: this.full(prefix),
                ContinuationToken: token,
            }));
            for (const o of page.Contents ?? []) {
                out.push({ key: this.relative(o.Key!), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) });
            }
            if (page.IsTruncated && !page.NextContinuationToken) {
                // Half a listing must never read as "these are all the backups" (prune, latest, status decide on it).
                throw new Error(`listing ${this.location}/${prefix} stopped half-way: the server says there is more but gives no continuation token`);
            }
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        return out;
    }

    async get(key: string): Promise<Readable> {
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
        return r.Body as Readable;
    }

    /**
     * A plain DELETE: on a versioned bucket S3 writes a delete marker and keeps every version (for
     * the noncurrent-version rule, and Object Lock, to decide). The HEAD before it reads the lock.
     */
    async delete(key: string): Promise<DeleteOutcome> {
        const Key = this.full(key);
        let head;
        try {
            head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
        } catch (e) {
            if (status(e) !== 404) {
                throw e;
            }
            return { result: "absent" };
        }
        const r = await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
        if (!r.DeleteMarker) {
            return { result: "deleted" };
        }
        const until = head.ObjectLockRetainUntilDate;
        const locked = until && until.getTime() > Date.now();
        const hold = head.ObjectLockLegalHoldStatus === "ON";
        return {
            result: "hidden",
            note: `delete marker written; version ${head.VersionId ?? "?"} remains` +
                (locked ? ` under Object Lock (${head.ObjectLockMode})` : "") +
                (hold ? " under a legal hold" : "") +
                (locked || hold ? "" : " until the bucket's noncurrent-version rule expires it"),
            retainedUntil: locked ? until : undefined,
        };
    }

    async listHidden(prefix: string): Promise<HiddenObject[]> {
        const versions = await listAllVersions(this.client, this.bucket, this.full(prefix));
        return hiddenFromVersions(versions).map((h) => ({ ...h, key: this.relative(h.key) }));
    }

    /** Removes the delete markers above the newest version: S3's own undelete. Markers hold no data. */
    async restoreHidden(o: HiddenObject): Promise<string> {
        const handle = o.handle as S3HiddenHandle;
        for (const VersionId of handle.markerVersionIds) {
            await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(o.key), VersionId }));
        }
        return `removed ${handle.markerVersionIds.length} delete marker(s); version ${handle.versionId} is current again`;
    }
}
