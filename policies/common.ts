/**
 * What every layer of the pack shares: resource type tokens, the resource-policy helper, reading
 * values that may be unknown at preview, and relating resources through their real
 * relationships (property dependencies or equal known values — never "same parent component").
 */
import { UnknownValueError } from "@pulumi/policy";
import type { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";

export type Props = Record<string, any>;

export const T = {
    bucket: "aws:s3/bucket:Bucket",
    versioning: "aws:s3/bucketVersioning:BucketVersioning",
    sse: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    publicAccess: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    bucketPolicy: "aws:s3/bucketPolicy:BucketPolicy",
    lifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    objectLock: "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    kmsKey: "aws:kms/key:Key",
    role: "aws:iam/role:Role",
    account: "azure-native:storage:StorageAccount",
    blobService: "azure-native:storage:BlobServiceProperties",
    container: "azure-native:storage:BlobContainer",
    managementPolicy: "azure-native:storage:ManagementPolicy",
    federatedCredential: "azure-native:managedidentity:FederatedIdentityCredential",
    cronJob: "kubernetes:batch/v1:CronJob",
    job: "kubernetes:batch/v1:Job",
    secret: "kubernetes:core/v1:Secret",
    networkPolicy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
} as const;

export const WORKLOADS = new Set([
    "kubernetes:batch/v1:CronJob",
    "kubernetes:batch/v1:Job",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:core/v1:Pod",
]);

export function resourcePolicy(
    name: string,
    description: string,
    type: string | ((t: string) => boolean),
    check: (props: Props, report: (msg: string) => void, args: ResourceValidationArgs) => void,
    extra: Partial<ResourceValidationPolicy> = {},
): ResourceValidationPolicy {
    const matches = typeof type === "string" ? (t: string) => t === type : type;
    return {
        name,
        description,
        ...extra,
        validateResource: (args, reportViolation) => {
            if (matches(args.type)) {
                check(args.props, (msg) => reportViolation(msg), args);
            }
        },
    };
}

/** What a value read at preview may be instead of itself. */
export const UNKNOWN: unique symbol = Symbol("unknown at preview");

/**
 * Reads a value that may be unknown at preview. The engine hands policies props behind a proxy
 * that throws on unknown values; a stack policy that let it throw would be skipped entirely, so
 * each read is caught here and the caller decides (relate by another path, or report it to
 * kx-stack-unverifiable) instead of passing silently.
 */
export function known<V>(read: () => V): V | typeof UNKNOWN {
    try {
        return read();
    } catch (e) {
        if (e instanceof UnknownValueError) {
            return UNKNOWN;
        }
        throw e;
    }
}

/** A JSON policy document (string or object) as a list of statements; undefined when unreadable. */
export function statementsOf(policy: unknown): Props[] | undefined {
    let doc: Props;
    try {
        doc = typeof policy === "string" ? JSON.parse(policy) : (policy as Props);
    } catch {
        return undefined;
    }
    if (!doc || typeof doc !== "object") {
        return undefined;
    }
    return Array.isArray(doc.Statement) ? doc.Statement : doc.Statement ? [doc.Statement] : [];
}

export const asList = <V>(v: V | V[] | undefined): V[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Whether `a` belongs with `b` through `prop` (a lifecycle configuration with its bucket, or with
 * the lock configuration of the same bucket): `a`'s `prop` depends on `b`, or on the resource
 * `b`'s `prop` depends on; or, when both are known, `a.prop` equals `b`'s id, name or own `prop`.
 * Two resources under the same component are NOT related by that alone: a component may hold
 * several buckets (the replica), and each needs its own companions.
 */
export function related(a: PolicyResource, b: PolicyResource, prop: string): boolean {
    const targets = (r: PolicyResource) => new Set((r.propertyDependencies?.[prop] ?? []).map((d) => d.urn));
    const aTargets = targets(a);
    if (aTargets.has(b.urn) || [...targets(b)].some((u) => aTargets.has(u))) {
        return true;
    }
    const value = known(() => a.props[prop]);
    if (value === UNKNOWN || value === undefined) {
        return false;
    }
    return [() => b.props[prop], () => b.props.bucket, () => b.props.id, () => b.props.accountName].some((read) => {
        const other = known(read);
        return other !== UNKNOWN && other !== undefined && other === value;
    });
}
