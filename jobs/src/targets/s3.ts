import {
    DeleteObjectCommand,
    GetObjectCommand,
    ListObjectsV2Command,
    PutObjectCommand,
    S3Client,
} from "@aws-sdk/client-s3";
import { Upload as MultipartUpload } from "@aws-sdk/lib-storage";
import { PassThrough, Readable } from "stream";
import { chunkSize, settleWithin, StoredObject, Target, Upload } from "./target";

export interface S3TargetOptions {
    bucket: string;
    prefix: string;
    region?: string;
    endpoint?: string;
    forcePathStyle?: boolean;
    credentials?: { accessKeyId: string; secretAccessKey: string };
    /** Attempts per request (parts included) before the upload fails. Default: 5. */
    maxAttempts?: number;
}

const MIB = 1024 * 1024;
/** S3: at most 10,000 parts of 5 MiB to 5 GiB. Parts start at the 5 MiB minimum: with two in flight plus one filling, that keeps peak memory lowest. */
export const S3_PART_LIMITS = { maxParts: 10_000, min: 5 * MIB, max: 5 * 1024 * MIB };

export class S3Target implements Target {
    readonly kind = "s3";
    readonly location: string;
    private readonly client: S3Client;
    private readonly root: string;

    constructor(private readonly opts: S3TargetOptions) {
        this.root = opts.prefix.replace(/^\/+|\/+$/g, "");
        this.location = `s3://${opts.bucket}/${this.root}`;
        this.client = new S3Client({
            region: opts.region ?? (opts.endpoint ? "us-east-1" : undefined),
            endpoint: opts.endpoint,
            forcePathStyle: opts.forcePathStyle,
            credentials: opts.credentials,
            maxAttempts: opts.maxAttempts ?? 5,
            // Checksums only where S3 requires them: streamed bodies of unknown length otherwise
            // get trailing checksums that S3-compatible stores (MinIO, s3rver) mishandle.
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

    upload(key: string, expectedBytes: number): Upload {
        const sink = new PassThrough();
        const partSize = chunkSize(expectedBytes, S3_PART_LIMITS);
        const upload = new MultipartUpload({
            client: this.client,
            params: { Bucket: this.opts.bucket, Key: this.full(key), Body: sink },
            partSize,
            // Memory is about partSize × (queueSize + 1): keep big parts few in flight.
            queueSize: partSize <= 16 * MIB ? 2 : 1,
            leavePartsOnError: false,
        });
        let versionId: string | undefined;
        const completion = upload.done().then((r) => {
            versionId = (r as { VersionId?: string }).VersionId;
        });
        completion.catch(() => undefined);
        return {
            sink,
            done: () => completion,
            abort: async (reason?: Error) => {
                // Failing the body makes lib-storage stop, abort the multipart upload (S3 drops every
                // part) and only then settle; upload.abort() would settle at once and let an
                // in-flight part or completion land afterwards.
                sink.destroy(reason ?? new Error("upload aborted"));
                const settled = await settleWithin(completion, 60_000);
                if (settled === "timeout") {
                    await upload.abort().catch(() => undefined);
                } else if (settled === "resolved") {
                    // It finished before the failure reached it: remove exactly that version.
                    await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.full(key), VersionId: versionId }));
                }
            },
        };
    }

    async putSmall(key: string, body: string): Promise<void> {
        await this.client.send(new PutObjectCommand({
            Bucket: this.opts.bucket,
            Key: this.full(key),
            Body: body,
            ContentType: "application/json",
        }));
    }

    async list(prefix: string): Promise<StoredObject[]> {
        const out: StoredObject[] = [];
        let token: string | undefined;
        do {
            const page = await this.client.send(new ListObjectsV2Command({
                Bucket: this.opts.bucket,
                Prefix: this.full(prefix),
                ContinuationToken: token,
            }));
            for (const o of page.Contents ?? []) {
                out.push({ key: this.relative(o.Key!), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) });
            }
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        return out;
    }

    async get(key: string): Promise<Readable> {
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.full(key) }));
        return r.Body as Readable;
    }

    async delete(key: string): Promise<void> {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.full(key) }));
    }
}
