/**
 * IAM and bucket policy documents for the backup bucket, as pure functions of ARNs so tests
 * read them without Pulumi. Least privilege: each identity gets exactly what kx-backup does (put,
 * get, list, delete and multipart clean-up in its own folders, and the KMS key), nothing
 * bucket-wide, and never a version delete.
 */
import { databasePrefix } from "../../jobs/src/naming";
import { issuerHostPath } from "../config/names";

export interface PolicyDocument {
    Version: "2012-10-17";
    Statement: Record<string, unknown>[];
}

/**
 * The bucket policy: TLS only; and with object lock, nobody — not even an administrator of the
 * account — may bypass GOVERNANCE retention to delete or shorten a locked version. Removing this
 * statement takes a bucket-policy change, which CloudTrail records and this stack would revert.
 */
export function bucketPolicy(bucketArn: string, opts: { denyGovernanceBypass: boolean }): PolicyDocument {
    const statements: Record<string, unknown>[] = [
        {
            Sid: "DenyInsecureTransport",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:*",
            Resource: [bucketArn, `${bucketArn}/*`],
            Condition: { Bool: { "aws:SecureTransport": "false" } },
        },
    ];
    if (opts.denyGovernanceBypass) {
        statements.push({
            Sid: "DenyGovernanceBypass",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:BypassGovernanceRetention",
            Resource: `${bucketArn}/*`,
        });
    }
    return { Version: "2012-10-17", Statement: statements };
}

/** A folder's key prefix, e.g. `krystalinex/kong/`. */
function folderKey(prefix: string, folder: string): string {
    return databasePrefix(prefix, folder);
}

export function jobAccessPolicy(
    bucketArn: string,
    prefix: string,
    kmsKeyArn: string,
    access: { readonly folders: readonly string[]; readonly deniedFolders: readonly string[] },
): PolicyDocument {
    const keys = access.folders.map((f) => folderKey(prefix, f));
    const statements: Record<string, unknown>[] = [
        {
            Sid: "ListOwnFolders",
            Effect: "Allow",
            // Versions too: `list --deleted` and `undelete` find backups hidden behind delete markers.
            Action: ["s3:ListBucket", "s3:ListBucketVersions"],
            Resource: [bucketArn],
            Condition: { StringLike: { "s3:prefix": keys.map((k) => `${k}*`) } },
        },
        {
            Sid: "ListOwnMultipartUploads",
            Effect: "Allow",
            Action: ["s3:ListBucketMultipartUploads"],
            Resource: [bucketArn],
        },
        {
            Sid: "ReadWriteOwnFolders",
            Effect: "Allow",
            // No s3:DeleteObjectVersion: a delete only ever writes a delete marker, and an undelete
            // copies the old version back (GetObjectVersion + PutObject).
            Action: [
                "s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention", "s3:DeleteObject",
                "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
            ],
            Resource: keys.map((k) => `${bucketArn}/${k}*`),
        },
        {
            Sid: "UseBackupKey",
            Effect: "Allow",
            Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            Resource: [kmsKeyArn],
        },
    ];
    if (access.deniedFolders.length > 0) {
        const denied = access.deniedFolders.map((f) => folderKey(prefix, f));
        statements.push(
            {
                Sid: "DenyForeignFolders",
                Effect: "Deny",
                Action: ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                Resource: denied.map((k) => `${bucketArn}/${k}*`),
            },
            {
                Sid: "DenyListingForeignFolders",
                Effect: "Deny",
                Action: ["s3:ListBucket", "s3:ListBucketVersions"],
                Resource: [bucketArn],
                Condition: { StringLike: { "s3:prefix": denied.map((k) => `${k}*`) } },
            },
        );
    }
    return { Version: "2012-10-17", Statement: statements };
}

/** The IAM OIDC provider of a cluster issuer, in the deploying account (IRSA needs it registered there). */
export function oidcProviderArn(partition: string, accountId: string, issuerUrl: string): string {
    return `arn:${partition}:iam::${accountId}:oidc-provider/${issuerHostPath(issuerUrl)}`;
}

/**
 * Trust for IRSA: exactly one ServiceAccount of one namespace, through the cluster's one issuer,
 * only through STS (exact `sub`, StringEquals: no wildcard can widen it).
 */
export function irsaTrustPolicy(providerArn: string, issuerUrl: string, namespace: string, serviceAccount: string): PolicyDocument {
    const issuer = issuerHostPath(issuerUrl);
    return {
        Version: "2012-10-17",
        Statement: [
            {
                Effect: "Allow",
                Principal: { Federated: providerArn },
                Action: "sts:AssumeRoleWithWebIdentity",
                Condition: {
                    StringEquals: {
                        [`${issuer}:aud`]: "sts.amazonaws.com",
                        [`${issuer}:sub`]: `system:serviceaccount:${namespace}:${serviceAccount}`,
                    },
                },
            },
        ],
    };
}

export function replicationPolicy(sourceArn: string, replicaArn: string, sourceKeyArn: string, replicaKeyArn: string): PolicyDocument {
    return {
        Version: "2012-10-17",
        Statement: [
            { Effect: "Allow", Action: ["s3:GetReplicationConfiguration", "s3:ListBucket"], Resource: [sourceArn] },
            {
                Effect: "Allow",
                Action: ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
                Resource: [`${sourceArn}/*`],
            },
            { Effect: "Allow", Action: ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"], Resource: [`${replicaArn}/*`] },
            { Effect: "Allow", Action: ["kms:Decrypt"], Resource: [sourceKeyArn] },
            { Effect: "Allow", Action: ["kms:Encrypt", "kms:GenerateDataKey"], Resource: [replicaKeyArn] },
        ],
    };
}
