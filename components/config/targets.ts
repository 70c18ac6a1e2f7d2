/** The `targets` section: the PVC, the S3 bucket and the Azure account the backups go to. */
import { bucketBaseName, bucketNameProblem } from "./names";
import { AWS_REGION, QUANTITY, Reader } from "./reader";
import { AzureTargetConfig, PvcTargetConfig, RawConfig, S3TargetConfig } from "./types";

/**
 * Block-storage classes (ReadWriteOnce only) that clusters commonly ship. Every backup, verify and
 * archive job mounts the backup volume; on one of these, a second pod on another node waits in
 * Multi-Attach until the first releases it — backups then miss their window.
 */
const RWO_ONLY_CLASSES = new Set([
    "gp2", "gp3", "io1", "io2", "sc1", "st1", "ebs-sc", "ebs-csi",
    "default", "managed", "managed-csi", "managed-premium", "managed-csi-premium",
    "standard", "standard-rwo", "premium-rwo", "local-path", "hostpath",
]);

const RWX_HINT = "a StorageClass that provides ReadWriteMany (EFS: efs-sc, AKS: azurefile-csi, an NFS class)";

export type Targets = { pvc?: PvcTargetConfig; s3?: S3TargetConfig; azure?: AzureTargetConfig };

export function readTargets(r: Reader, raw: RawConfig, namePrefix: string, minRetention: number): Targets {
    const targets: Targets = {};
    const t = r.object("targets", raw.values.targets ?? {}, ["pvc", "s3", "azure"]);
    if (!t) {
        return targets;
    }
    if (t.pvc !== undefined) {
        targets.pvc = readPvc(r, t.pvc);
    }
    if (t.s3 !== undefined) {
        targets.s3 = readS3(r, t.s3, raw, minRetention);
        const bucketProblem = bucketNameProblem(`${bucketBaseName(namePrefix, raw.stack)}-abcdefg`);
        if (bucketProblem) {
            r.fail("namePrefix", namePrefix, `a prefix that, with the stack name, makes a valid S3 bucket name (${bucketProblem})`);
        }
    }
    if (t.azure !== undefined) {
        targets.azure = readAzure(r, t.azure, minRetention);
    }
    if (t.pvc === undefined && t.s3 === undefined && t.azure === undefined) {
        r.fail("targets", raw.values.targets, "at least one of pvc, s3, azure");
    }
    return targets;
}

function readPvc(r: Reader, raw: unknown): PvcTargetConfig | undefined {
    const o = r.object("targets.pvc", raw, ["size", "storageClass"]);
    if (!o) {
        return undefined;
    }
    const size = r.string("targets.pvc.size", o.size, QUANTITY, "a Kubernetes quantity such as 50Gi");
    let storageClass = r.string("targets.pvc.storageClass", o.storageClass, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, `${RWX_HINT}; required: the cluster's default class is usually block storage`);
    if (storageClass !== undefined && RWO_ONLY_CLASSES.has(storageClass)) {
        storageClass = r.fail("targets.pvc.storageClass", storageClass, `${RWX_HINT}: ${storageClass} is ReadWriteOnce block storage, and every backup, verify and archive job mounts this volume`);
    }
    return size && storageClass ? { size, storageClass } : undefined;
}

function readS3(r: Reader, raw: unknown, rawConfig: RawConfig, minRetention: number): S3TargetConfig | undefined {
    const o = r.object("targets.s3", raw, ["region", "prefix", "objectLockMode", "objectLockDays", "replicaRegion", "noncurrentVersionDays", "access"]);
    if (!o) {
        return undefined;
    }
    let region = r.string("targets.s3.region", o.region, AWS_REGION, "an AWS region such as eu-west-1");
    if (region !== undefined && rawConfig.awsRegion !== region) {
        region = r.fail(
            "targets.s3.region",
            region,
            rawConfig.awsRegion === undefined
                ? "the region in aws:region, which is not set: pulumi config set aws:region <region> (the stack's AWS provider creates the bucket there)"
                : `aws:region (${rawConfig.awsRegion}): the stack's AWS provider creates the bucket there`,
        );
    }
    const prefix = r.string("targets.s3.prefix", o.prefix ?? "krystalinex", /^[a-z0-9][a-z0-9._-]*$/, "a key prefix of lowercase letters, digits, . _ -");
    let objectLock: S3TargetConfig["objectLock"];
    if (o.objectLockDays !== undefined) {
        const days = r.int("targets.s3.objectLockDays", o.objectLockDays, 1, 3650, "days");
        const mode = r.oneOf("targets.s3.objectLockMode", o.objectLockMode ?? "GOVERNANCE", ["GOVERNANCE", "COMPLIANCE"] as const);
        if (days !== undefined && days > minRetention) {
            r.fail("targets.s3.objectLockDays", days, `at most the shortest database retention (${minRetention} days), or prune could never delete`);
        }
        objectLock = days !== undefined && mode ? { days, mode } : undefined;
    } else if (o.objectLockMode !== undefined) {
        r.fail("targets.s3.objectLockMode", o.objectLockMode, "only together with targets.s3.objectLockDays");
    }
    const replicaRegion = o.replicaRegion === undefined ? undefined : r.string("targets.s3.replicaRegion", o.replicaRegion, AWS_REGION, "an AWS region other than targets.s3.region");
    if (replicaRegion !== undefined && replicaRegion === o.region) {
        r.fail("targets.s3.replicaRegion", replicaRegion, "an AWS region other than targets.s3.region");
    }
    const noncurrentVersionDays = r.int("targets.s3.noncurrentVersionDays", o.noncurrentVersionDays ?? 7, 1, 365, "days");
    const access = r.oneOf("targets.s3.access", o.access ?? "irsa", ["irsa", "static-keys"] as const);
    return region && prefix && noncurrentVersionDays && access ? { region, prefix, objectLock, replicaRegion, noncurrentVersionDays, access } : undefined;
}

function readAzure(r: Reader, raw: unknown, minRetention: number): AzureTargetConfig | undefined {
    const o = r.object("targets.azure", raw, [
        "location", "resourceGroup", "prefix", "accountName", "containerName", "immutabilityDays", "immutabilityState",
        "noncurrentVersionDays", "softDeleteDays", "access",
    ]);
    if (!o) {
        return undefined;
    }
    const location = r.string("targets.azure.location", o.location, /^[a-z0-9]+$/, "an Azure location such as westeurope");
    const resourceGroup = r.string("targets.azure.resourceGroup", o.resourceGroup, /^[-\w._()]{1,89}[-\w_()]$/, "a resource group name (1–90 letters, digits, - _ . ( ))");
    const prefix = r.string("targets.azure.prefix", o.prefix ?? "krystalinex", /^[a-z0-9][a-z0-9._-]*$/, "a blob prefix of lowercase letters, digits, . _ -");
    const accountName = o.accountName === undefined ? undefined : r.string("targets.azure.accountName", o.accountName, /^[a-z0-9]{3,24}$/, "3 to 24 lowercase letters and digits");
    const containerName = r.string("targets.azure.containerName", o.containerName ?? "backups", /^(?=.{3,63}$)[a-z0-9](-?[a-z0-9])*$/, "3 to 63 lowercase letters, digits and single hyphens");
    let immutability: AzureTargetConfig["immutability"];
    if (o.immutabilityDays !== undefined) {
        const days = r.int("targets.azure.immutabilityDays", o.immutabilityDays, 1, 3650, "days");
        if (days !== undefined && days > minRetention) {
            r.fail("targets.azure.immutabilityDays", days, `at most the shortest database retention (${minRetention} days), or prune could never delete`);
        }
        // Azure creates a policy Unlocked only; Locked is a second, irreversible update (README).
        const state = r.oneOf("targets.azure.immutabilityState", o.immutabilityState ?? "Unlocked", ["Unlocked", "Locked"] as const);
        immutability = days !== undefined && state ? { days, state } : undefined;
    } else if (o.immutabilityState !== undefined) {
        r.fail("targets.azure.immutabilityState", o.immutabilityState, "only together with targets.azure.immutabilityDays");
    }
    const noncurrentVersionDays = r.int("targets.azure.noncurrentVersionDays", o.noncurrentVersionDays ?? 7, 1, 365, "days");
    const softDeleteDays = r.int("targets.azure.softDeleteDays", o.softDeleteDays ?? 7, 1, 365, "days");
    const access = r.oneOf("targets.azure.access", o.access ?? "workload-identity", ["workload-identity", "connection-string"] as const);
    return location && resourceGroup && prefix && containerName && noncurrentVersionDays && softDeleteDays && access
        ? { location, resourceGroup, prefix, accountName, containerName, immutability, noncurrentVersionDays, softDeleteDays, access }
        : undefined;
}
