import { BlobServiceClient, ContainerClient, StoragePipelineOptions } from "@azure/storage-blob";
import { PassThrough, Readable } from "stream";
import { chunkSize, settleWithin, StoredObject, Target, Upload } from "./target";

export interface AzureTargetOptions {
    container: string;
    prefix: string;
    /** https://<account>.blob.core.windows.net, authenticated by DefaultAzureCredential. */
    accountUrl?: string;
    connectionString?: string;
    /** Tries per request before the upload fails. Default: 4. */
    maxTries?: number;
}

const MIB = 1024 * 1024;
/** Azure block blobs: at most 50,000 blocks, each up to 4000 MiB. */
export const AZURE_BLOCK_LIMITS = { maxParts: 50_000, min: 8 * MIB, max: 4000 * MIB };

export class AzureTarget implements Target {
    readonly kind = "azure";
    readonly location: string;
    private readonly container: ContainerClient;
    private readonly root: string;

    constructor(opts: AzureTargetOptions) {
        this.root = opts.prefix.replace(/^\/+|\/+$/g, "");
        const pipeline: StoragePipelineOptions = {
            retryOptions: { maxTries: opts.maxTries ?? 4, retryDelayInMs: 250, maxRetryDelayInMs: 4000 },
        };
        let service: BlobServiceClient;
        if (opts.connectionString) {
            service = BlobServiceClient.fromConnectionString(opts.connectionString, pipeline);
        } else if (opts.accountUrl) {
            // Loaded only when used: workload identity in the pod, az login or env on a host.
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const { DefaultAzureCredential } = require("@azure/identity") as typeof import("@azure/identity");
            service = new BlobServiceClient(opts.accountUrl, new DefaultAzureCredential(), pipeline);
        } else {
            throw new Error("Azure target needs BACKUP_AZURE_ACCOUNT_URL or AZURE_STORAGE_CONNECTION_STRING");
        }
        this.container = service.getContainerClient(opts.container);
        this.location = `azure://${service.accountName}/${opts.container}/${this.root}`;
    }

    private full(key: string): string {
        return this.root === "" ? key : `${this.root}/${key}`;
    }

    upload(key: string, expectedBytes: number): Upload {
        const sink = new PassThrough();
        const blob = this.container.getBlockBlobClient(this.full(key));
        const abortController = new AbortController();
        const blockSize = chunkSize(expectedBytes, AZURE_BLOCK_LIMITS);
        // Blocks stay uncommitted (invisible, garbage-collected by Azure) until the final commit.
        const completion = blob
            .uploadStream(sink, blockSize, blockSize <= 16 * MIB ? 4 : 1, { abortSignal: abortController.signal })
            .then(() => undefined);
        completion.catch(() => undefined);
        return {
            sink,
            done: () => completion,
            abort: async (reason?: Error) => {
                sink.destroy(reason ?? new Error("upload aborted"));
                abortController.abort();
                await settleWithin(completion, 60_000);
                // The commit may have reached Azure just before the abort: remove the blob if it is there.
                await blob.deleteIfExists({ deleteSnapshots: "include" }).catch(() => undefined);
            },
        };
    }

    async putSmall(key: string, body: string): Promise<void> {
        await this.container.getBlockBlobClient(this.full(key)).upload(body, Buffer.byteLength(body), {
            blobHTTPHeaders: { blobContentType: "application/json" },
        });
    }

    async list(prefix: string): Promise<StoredObject[]> {
        const out: StoredObject[] = [];
        for await (const b of this.container.listBlobsFlat({ prefix: this.full(prefix) })) {
            out.push({
                key: this.root === "" ? b.name : b.name.slice(this.root.length + 1),
                size: b.properties.contentLength ?? 0,
                lastModified: b.properties.lastModified,
            });
        }
        return out;
    }

    async get(key: string): Promise<Readable> {
        const r = await this.container.getBlobClient(this.full(key)).download();
        return r.readableStreamBody as Readable;
    }

    async delete(key: string): Promise<void> {
        await this.container.getBlobClient(this.full(key)).deleteIfExists({ deleteSnapshots: "include" });
    }
}
