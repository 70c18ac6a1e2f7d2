/**
 * IAM and bucket policy documents for the backup bucket, as pure functions of ARNs so tests
 * read them without Pulumi. Least privilege: the job gets exactly what kx-backup does (put, get,
 * list, delete and multipart clean-up under its prefix, and the KMS key), nothing bucket-wide.
 */
export interface PolicyDocument {
    Version: "2012-10-17";
    Statement: Record<string, unknown>[];
}

export function denyInsecureTransport(bucketArn: string): PolicyDocument {
    return {
        Version: "2012-10-17",
        Statement: [
            {
                Sid: "DenyInsecureTransport",
                Effect: "Deny",
                Principal: "*",
                Action: "s3:*",
                Resource: [bucketArn, `${bucketArn}/*`],
                Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
        ],
    };
}

export function jobAccessPolicy(bucketArn: string, prefix: string, kmsKeyArn: string): PolicyDocument {
    const folder = prefix.replace(/\/+$/, "");
    return {
        Version: "2012-10-17",
        Statement: [
            {
                Sid: "ListBackupPrefix",
                Effect: "Allow",
                Action: ["s3:ListBucket"],
                Resource: [bucketArn],
                Condition: { StringLike: { "s3:prefix": [`${folder}/*`] } },
            },
            {
                Sid: "ListOwnMultipartUploads",
                Effect: "Allow",
                Action: ["s3:ListBucketMultipartUploads"],
                Resource: [bucketArn],
            },
            {
                Sid: "ReadWriteBackupObjects",
                Effect: "Allow",
                Action: ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                Resource: [`${bucketArn}/${folder}/*`],
            },
            {
                Sid: "UseBackupKey",
                Effect: "Allow",
                Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                Resource: [kmsKeyArn],
            },
        ],
    };
}

/** Trust for IRSA: only the named ServiceAccounts of one namespace, only through STS. */
export function irsaTrustPolicy(oidcProviderArn: string, issuer: string, namespace: string, serviceAccounts: readonly string[]): PolicyDocument {
    return {
        Version: "2012-10-17",
        Statement: [
            {
                Effect: "Allow",
                Principal: { Federated: oidcProviderArn },
                Action: "sts:AssumeRoleWithWebIdentity",
                Condition: {
                    StringEquals: {
                        [`${issuer}:aud`]: "sts.amazonaws.com",
                        [`${issuer}:sub`]: serviceAccounts.map((sa) => `system:serviceaccount:${namespace}:${sa}`),
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
