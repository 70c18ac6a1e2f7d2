import { BlobServiceClient, ContainerClient, RestError, StoragePipelineOptions } from "@azure/storage-blob";
import { randomBytes } from "crypto";
import { Readable } from "stream";
import { shutdownSignal } from "../shutdown";
import { AzureHiddenHandle, hiddenFromBlobItems } from "./azureVersions";
import { digestOf, growthCeiling, Part, partedStream } from "./parts";
import { stagedUpload } from "./staged";
import { UploadBudget } from "../uploadBudget";
import { chunkSize, DeleteOutcome, partsGrownWarning, HiddenObject, ObjectExistsError, PutOptions, StoredObject, Target, Upload, UploadOptions } from "./target";

export interface AzureTargetOptions {
    container: string;
    prefix: string;
    /** https://<account>.blob.core.windows.net, authenticated by DefaultAzureCredential. */
    accountUrl?: string;
    connectionString?: string;
    /** Tries per request before the upload fails. Default: 4. */
    maxTries?: number;
    /** The memory budget shared with the other targets (uploadBudget.ts); without one, the sizes below. */
    budget?: UploadBudget;
    /** Azure's block limits (AZURE_BLOCK_LIMITS); smaller ones only in tests, to reach the limit cheaply. */
    partLimits?: typeof AZURE_BLOCK_LIMITS;
}

const MIB = 1024 * 1024;
/** Azure block blobs: at most 50,000 blocks, each up to 4000 MiB (any size; 4 MiB keeps the buffers small and still allows 195 GiB). */
export const AZURE_BLOCK_LIMITS = { maxParts: 50_000, min: 4 * MIB, max: 4000 * MIB };

/** Blob metadata naming the run that wrote a blob (metadata names are C# identifiers: no dashes). */
export const RUN_METADATA = "kx_backup_run";

function status(e: unknown): number | undefined {
    return (e as RestError)?.statusCode;
}

/** `ifNoneMatch: "*"` on an existing blob: 409 BlobAlreadyExists, or 412 ConditionNotMet. */
function isTaken(e: unknown): boolean {
    const code = (e as RestError)?.code;
    return status(e) === 412 || code === "BlobAlreadyExists" || code === "ConditionNotMet";
}

/** Delete refused by WORM: an immutability policy (409 BlobImmutableDueToPolicy) or a legal hold. */
export function refusedByLock(e: unknown): boolean {
    const code = (e as RestError)?.code;
    return status(e) === 409 && (code === "BlobImmutableDueToPolicy" || code === "BlobImmutableDueToLegalHold");
}

/** Block ids must have one length within a blob: a per-upload nonce (never another upload's) and the part number. */
function blockId(nonce: string, n: number): string {
    return Buffer.from(`${nonce}-${String(n).padStart(6, "0")}`).toString("base64");
}

export class AzureTarget implements Target {
    readonly kind = "azure";
    readonly location: string;
    private readonly service: BlobServiceClient;
    private readonly container: ContainerClient;
    private readonly root: string;
    private readonly limits: typeof AZURE_BLOCK_LIMITS;
    private softDelete: Promise<{ days?: number; error?: string }> | undefined;

    constructor(private readonly opts: AzureTargetOptions) {
        this.limits = opts.partLimits ?? AZURE_BLOCK_LIMITS;
        opts.budget?.join({ kind: this.kind, limits: this.limits, maxConcurrency: 4 });
        this.root = opts.prefix.replace(/^\/+|\/+$/g, "");
        const pipeline: StoragePipelineOptions = {
            retryOptions: { maxTries: opts.maxTries ?? 4, retryDelayInMs: 250, maxRetryDelayInMs: 4000 },
        };
        if (opts.connectionString) {
            this.service = BlobServiceClient.fromConnectionString(opts.connectionString, pipeline);
        } else if (opts.accountUrl) {
            // Loaded only when used: workload identity in the pod, az login or env on a host.
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const { DefaultAzureCredential } = require("@azure/identity") as typeof import("@azure/identity");
            this.service = new BlobServiceClient(opts.accountUrl, new DefaultAzureCredential(), pipeline);
        } else {
            throw new Error("Azure target needs BACKUP_AZURE_ACCOUNT_URL or AZURE_STORAGE_CONNECTION_STRING");
        }
        this.container = this.service.getContainerClient(opts.container);
        this.location = `azure://${this.service.accountName}/${opts.container}/${this.root}`;
    }

    private full(key: string): string {
        return this.root === "" ? key : `${this.root}/${key}`;
    }

    private relative(name: string): string {
        return this.root === "" ? name : name.slice(this.root.length + 1);
    }

    /**
     * Blocks are staged with their transactional MD5 (Azure checks each on arrival) and stay
     * uncommitted — invisible, garbage-collected by Azure after 7 days — until commit() lists
     * them, exclusively, with the whole blob's Content-MD5 stored on it.
     */
    upload(key: string, o: UploadOptions): Upload {
        const blob = this.container.getBlockBlobClient(this.full(key));
        const requests = new AbortController();
        const nonce = randomBytes(6).toString("hex");
        const plan = this.opts.budget?.plan(this.kind, o.expectedBytes);
        const blockSize = plan?.chunkBytes ?? chunkSize(o.expectedBytes, this.limits);
        const staged: number[] = [];
        const sendBlock = async (p: Part): Promise<void> => {
            await blob.stageBlock(blockId(nonce, p.number), p.body, p.body.length, {
                transactionalContentMD5: p.digest,
                abortSignal: requests.signal,
            });
            staged.push(p.number);
        };
        const queue = plan?.concurrency ?? (blockSize <= 16 * MIB ? 4 : 1);
        const stream = partedStream(blockSize, queue, sendBlock, {
            digest: "md5",
            wholeMd5: true,
            limits: this.limits,
            onGrow: (size, over) => o.warn?.(partsGrownWarning(this.kind, size, over)),
            maxHeldBytes: growthCeiling(blockSize, queue),
        });
        const metadata = o.runId ? { [RUN_METADATA]: o.runId } : undefined;

        let etag: string | undefined;
        return stagedUpload({
            sink: stream.sink,
            staged: stream.staged,
            requests,
            signal: o.signal ?? shutdownSignal,
            publish: async () => {
                const blocks = [...staged].sort((a, b) => a - b).map((n) => blockId(nonce, n));
                try {
                    const r = await blob.commitBlockList(blocks, {
                        blobHTTPHeaders: { blobContentMD5: Buffer.from(stream.wholeMd5(), "base64") },
                        metadata,
                        conditions: { ifNoneMatch: "*" },
                    });
                    etag = r.etag;
                } catch (e) {
                    throw isTaken(e) ? new ObjectExistsError(this.location, key) : e;
                }
            },
            // Only the blob this upload committed: the ETag must still match.
            unpublish: async () => {
                await blob.deleteIfExists({ conditions: { ifMatch: etag } });
            },
            // Uncommitted blocks are invisible; Azure discards them after 7 days.
            unstage: async () => undefined,
        });
    }

    async putSmall(key: string, body: string, o: PutOptions = {}): Promise<void> {
        const data = Buffer.from(body, "utf8");
        try {
            await this.container.getBlockBlobClient(this.full(key)).upload(data, data.length, {
                blobHTTPHeaders: { blobContentType: "application/json", blobContentMD5: digestOf(data, "md5") },
                metadata: o.runId ? { [RUN_METADATA]: o.runId } : undefined,
                conditions: o.replace ? undefined : { ifNoneMatch: "*" },
            });
        } catch (e) {
            throw isTaken(e) ? new ObjectExistsError(this.location, key) : e;
        }
    }

    async list(prefix: string): Promise<StoredObject[]> {
        const out: StoredObject[] = [];
        for await (const b of this.container.listBlobsFlat({ prefix: this.full(prefix) })) {
            out.push({ key: this.relative(b.name), size: b.properties.contentLength ?? 0, lastModified: b.properties.lastModified });
        }
        return out;
    }

    async get(key: string): Promise<Readable> {
        const r = await this.container.getBlobClient(this.full(key)).download();
        return r.readableStreamBody as Readable;
    }

    /** The account's blob soft-delete retention, read once; an identity without account rights cannot read it. */
    private softDeleteDays(): Promise<{ days?: number; error?: string }> {
        this.softDelete ??= this.service.getProperties().then(
            (p) => ({ days: p.deleteRetentionPolicy?.enabled ? p.deleteRetentionPolicy.days : undefined }),
            (e) => ({ error: (e as Error).message.split("\n")[0] }),
        );
        return this.softDelete;
    }

    /**
     * Delete Blob on the base blob: with versioning on, its current version becomes a previous
     * version; with soft delete on, it is kept for the retention period. Properties read before
     * the delete say which, and whether an immutability policy or legal hold keeps it.
     */
    async delete(key: string): Promise<DeleteOutcome> {
        const blob = this.container.getBlobClient(this.full(key));
        let props;
        try {
            props = await blob.getProperties();
        } catch (e) {
            if (status(e) === 404) {
                return { result: "absent" };
            }
            throw e;
        }
        const until = props.immutabilityPolicyExpiresOn && props.immutabilityPolicyExpiresOn.getTime() > Date.now() ? props.immutabilityPolicyExpiresOn : undefined;
        let deleted;
        try {
            deleted = await blob.deleteIfExists({ deleteSnapshots: "include" });
        } catch (e) {
            if (refusedByLock(e)) {
                return { result: "retained", note: `the container's immutability policy${props.legalHold ? " or a legal hold" : ""} refuses the delete`, retainedUntil: until };
            }
            throw e;
        }
        if (!deleted.succeeded) {
            return { result: "absent" };
        }
        const held = props.legalHold ? " under a legal hold" : "";
        if (props.versionId) {
            return { result: "hidden", note: `kept as previous version ${props.versionId}${held}`, retainedUntil: until };
        }
        const soft = await this.softDeleteDays();
        if (soft.days) {
            return { result: "hidden", note: `soft-deleted: recoverable for ${soft.days} day(s)${held}`, retainedUntil: until };
        }
        if (soft.error) {
            return { result: "deleted", note: `the account's soft-delete setting could not be read (${soft.error}); if it is on, undelete can still bring it back`, retainedUntil: until };
        }
        return { result: "deleted", retainedUntil: until };
    }

    async listHidden(prefix: string): Promise<HiddenObject[]> {
        const items = [];
        for await (const b of this.container.listBlobsFlat({ prefix: this.full(prefix), includeDeleted: true, includeVersions: true })) {
            items.push(b);
        }
        return hiddenFromBlobItems(items).map((h) => ({ ...h, key: this.relative(h.key) }));
    }

    /**
     * Versioning off: Undelete Blob. Versioning on: copy the newest previous version over the
     * base blob (Azure's documented restore), exclusively — never over a blob that reappeared.
     */
    async restoreHidden(o: HiddenObject): Promise<string> {
        const handle = o.handle as AzureHiddenHandle;
        const blob = this.container.getBlobClient(this.full(o.key));
        if (handle.undelete) {
            await blob.undelete();
        }
        if (!handle.versionId) {
            return "undeleted the soft-deleted blob";
        }
        try {
            const poller = await blob.beginCopyFromURL(blob.withVersion(handle.versionId).url, { conditions: { ifNoneMatch: "*" } });
            await poller.pollUntilDone();
        } catch (e) {
            throw isTaken(e) ? new ObjectExistsError(this.location, o.key) : e;
        }
        return `${handle.undelete ? "undeleted its versions, then " : ""}copied version ${handle.versionId} over the base blob`;
    }
}
