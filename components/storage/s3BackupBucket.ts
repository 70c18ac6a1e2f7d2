import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { IdentityKey, JobIdentity } from "../identities";
import { KEEP } from "./keep";
import { RetentionInput, s3LifecycleRules } from "./lifecycle";
import { bucketPolicy, irsaTrustPolicy, jobAccessPolicy, oidcProviderArn, replicationPolicy } from "./s3Policies";

export interface S3BackupBucketArgs {
    /** Base of the bucket name; Pulumi appends a random suffix so names never collide. */
    readonly bucketNamePrefix: string;
    /** Key prefix the job writes under. */
    readonly prefix: string;
    /** One lifecycle rule per folder: expiring at its retention, or clean-up only when kept indefinitely. */
    readonly folders: readonly RetentionInput[];
    /** Days a noncurrent version survives. Default: 7. */
    readonly noncurrentVersionDays?: number;
    /** Object lock default retention (WORM). Default: none. Needs a new bucket: lock cannot be added later. */
    readonly objectLock?: { readonly mode: "GOVERNANCE" | "COMPLIANCE"; readonly days: number };
    /** A second region receiving every backup (region-failure scenario). Default: none. */
    readonly replicaRegion?: string;
    /**
     * How the jobs authenticate. `irsa`: a role per identity, assumed by its ServiceAccount through
     * the cluster's OIDC issuer. `static-keys`: an IAM user and access key per identity (dev
     * clusters without OIDC).
     */
    readonly access: "irsa" | "static-keys";
    /** Who may use which folders (components/identities.ts). */
    readonly identities: readonly JobIdentity[];
    /** IRSA: the cluster's OIDC issuer URL and the ServiceAccounts' namespace. */
    readonly irsa?: { readonly oidcIssuer: string; readonly namespace: string };
    readonly tags?: Record<string, string>;
}

/**
 * A versioned, KMS-encrypted, private S3 bucket with per-database retention, optional object lock
 * and cross-region replication, and a least-privilege identity for the backup job.
 */
export class S3BackupBucket extends pulumi.ComponentResource {
    public readonly bucketName: pulumi.Output<string>;
    public readonly bucketArn: pulumi.Output<string>;
    public readonly kmsKeyArn: pulumi.Output<string>;
    public readonly region: pulumi.Output<string>;
    /** IRSA role per identity, for its ServiceAccount's annotation (irsa access). */
    public readonly roleArns: Partial<Record<IdentityKey, pulumi.Output<string>>> = {};
    /** Static credentials per identity (static-keys access); the secret half is a Pulumi secret. */
    public readonly staticKeys: Partial<Record<IdentityKey, { accessKeyId: pulumi.Output<string>; secretAccessKey: pulumi.Output<string> }>> = {};
    public readonly replicaBucketName?: pulumi.Output<string>;

    constructor(name: string, args: S3BackupBucketArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:S3BackupBucket", name, {}, opts);
        const noncurrentDays = args.noncurrentVersionDays ?? 7;
        const tags = { ...args.tags, "app.kubernetes.io/part-of": "krystalinex-backup" };
        const parent = { parent: this };

        const key = new aws.kms.Key(`${name}-key`, {
            description: `kx-backup: encryption of ${args.bucketNamePrefix}`,
            enableKeyRotation: true,
            deletionWindowInDays: 30,
            tags,
        }, { ...parent, ...KEEP });

        const bucket = new aws.s3.Bucket(`${name}-bucket`, {
            bucketPrefix: `${args.bucketNamePrefix}-`,
            objectLockEnabled: args.objectLock !== undefined,
            forceDestroy: false,
            tags,
        }, { ...parent, ...KEEP });
        const bucketOpts = { parent: this, dependsOn: [bucket] };

        const versioning = new aws.s3.BucketVersioning(`${name}-versioning`, {
            bucket: bucket.id,
            versioningConfiguration: { status: "Enabled" },
        }, bucketOpts);

        new aws.s3.BucketServerSideEncryptionConfiguration(`${name}-sse`, {
            bucket: bucket.id,
            rules: [{
                applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: key.arn },
                bucketKeyEnabled: true,
            }],
        }, bucketOpts);

        const publicAccess = new aws.s3.BucketPublicAccessBlock(`${name}-public-access`, {
            bucket: bucket.id,
            blockPublicAcls: true,
            blockPublicPolicy: true,
            ignorePublicAcls: true,
            restrictPublicBuckets: true,
        }, bucketOpts);

        new aws.s3.BucketPolicy(`${name}-policy`, {
            bucket: bucket.id,
            policy: bucket.arn.apply((arn) => JSON.stringify(bucketPolicy(arn, { denyGovernanceBypass: args.objectLock !== undefined }))),
        }, { parent: this, dependsOn: [publicAccess], aliases: [{ name: `${name}-tls-only` }] });

        // Lifecycle rules on a versioned bucket must wait for versioning, or noncurrent rules race it.
        new aws.s3.BucketLifecycleConfiguration(`${name}-lifecycle`, {
            bucket: bucket.id,
            rules: s3LifecycleRules(args.prefix, args.folders, noncurrentDays),
        }, { parent: this, dependsOn: [versioning] });

        if (args.objectLock) {
            new aws.s3.BucketObjectLockConfiguration(`${name}-object-lock`, {
                bucket: bucket.id,
                objectLockEnabled: "Enabled",
                rule: { defaultRetention: { mode: args.objectLock.mode, days: args.objectLock.days } },
            }, { parent: this, dependsOn: [versioning] });
        }

        if (args.replicaRegion) {
            this.replicaBucketName = this.replicate(name, args.replicaRegion, bucket, key, versioning, args, tags);
        }

        for (const identity of args.identities) {
            this.grant(name, identity, bucket, key, args, tags);
        }

        this.bucketName = bucket.bucket;
        this.bucketArn = bucket.arn;
        this.kmsKeyArn = key.arn;
        this.region = bucket.region;
        this.registerOutputs({
            bucketName: this.bucketName,
            bucketArn: this.bucketArn,
            kmsKeyArn: this.kmsKeyArn,
            roleArns: this.roleArns,
            replicaBucketName: this.replicaBucketName,
        });
    }

    /** One identity's access: a policy on its folders, and a role (IRSA) or a user and key (dev). */
    private grant(name: string, identity: JobIdentity, bucket: aws.s3.Bucket, key: aws.kms.Key, args: S3BackupBucketArgs, tags: Record<string, string>): void {
        const id = `${name}-${identity.key}`;
        const parent = { parent: this };
        // The jobs identity's resources were first named "job-…": keep them, do not replace them.
        const was = (suffix: string): pulumi.CustomResourceOptions =>
            identity.key === "jobs" ? { parent: this, aliases: [{ name: `${name}-job-${suffix}` }] } : parent;
        const policy = new aws.iam.Policy(`${id}-access`, {
            description: `kx-backup ${identity.serviceAccount}: read and write its folders under the prefix, with the bucket key`,
            policy: pulumi.all([bucket.arn, key.arn]).apply(([b, k]) => JSON.stringify(jobAccessPolicy(b, args.prefix, k, identity))),
            tags,
        }, was("access"));
        if (args.access === "irsa") {
            if (!args.irsa) {
                throw new Error("S3BackupBucket: access irsa needs args.irsa (the cluster's OIDC issuer)");
            }
            const irsa = args.irsa;
            // The provider lives in the deploying account: IAM trusts an issuer only through it.
            const caller = aws.getCallerIdentityOutput({}, parent);
            const partition = aws.getPartitionOutput({}, parent);
            const role = new aws.iam.Role(`${id}-role`, {
                description: `kx-backup ${identity.serviceAccount}, assumed by its ServiceAccount through IRSA`,
                assumeRolePolicy: pulumi
                    .all([partition.partition, caller.accountId])
                    .apply(([p, account]) => JSON.stringify(irsaTrustPolicy(oidcProviderArn(p, account, irsa.oidcIssuer), irsa.oidcIssuer, irsa.namespace, identity.serviceAccount))),
                tags,
            }, was("role"));
            new aws.iam.RolePolicyAttachment(`${id}-role-access`, { role: role.name, policyArn: policy.arn }, was("role-access"));
            this.roleArns[identity.key] = role.arn;
        } else {
            const user = new aws.iam.User(`${id}-user`, { tags }, was("user"));
            new aws.iam.UserPolicyAttachment(`${id}-user-access`, { user: user.name, policyArn: policy.arn }, was("user-access"));
            const accessKey = new aws.iam.AccessKey(`${id}-key`, { user: user.name }, was("key"));
            this.staticKeys[identity.key] = { accessKeyId: accessKey.id, secretAccessKey: pulumi.secret(accessKey.secret) };
        }
    }

    /** A versioned, encrypted copy in another region, fed by S3 replication of every backup. */
    private replicate(
        name: string,
        region: string,
        source: aws.s3.Bucket,
        sourceKey: aws.kms.Key,
        sourceVersioning: aws.s3.BucketVersioning,
        args: S3BackupBucketArgs,
        tags: Record<string, string>,
    ): pulumi.Output<string> {
        const provider = new aws.Provider(`${name}-replica-provider`, { region: region as aws.Region }, { parent: this });
        const inReplica = { parent: this, provider };
        const key = new aws.kms.Key(`${name}-replica-key`, {
            description: `kx-backup: encryption of the ${region} replica`,
            enableKeyRotation: true,
            deletionWindowInDays: 30,
            tags,
        }, { ...inReplica, ...KEEP });
        const replica = new aws.s3.Bucket(`${name}-replica`, {
            bucketPrefix: `${args.bucketNamePrefix}-replica-`,
            objectLockEnabled: args.objectLock !== undefined,
            forceDestroy: false,
            tags,
        }, { ...inReplica, ...KEEP });
        const replicaVersioning = new aws.s3.BucketVersioning(`${name}-replica-versioning`, {
            bucket: replica.id,
            versioningConfiguration: { status: "Enabled" },
        }, inReplica);
        new aws.s3.BucketServerSideEncryptionConfiguration(`${name}-replica-sse`, {
            bucket: replica.id,
            rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: key.arn }, bucketKeyEnabled: true }],
        }, inReplica);
        const replicaPublic = new aws.s3.BucketPublicAccessBlock(`${name}-replica-public-access`, {
            bucket: replica.id,
            blockPublicAcls: true,
            blockPublicPolicy: true,
            ignorePublicAcls: true,
            restrictPublicBuckets: true,
        }, inReplica);
        new aws.s3.BucketPolicy(`${name}-replica-policy`, {
            bucket: replica.id,
            policy: replica.arn.apply((arn) => JSON.stringify(bucketPolicy(arn, { denyGovernanceBypass: args.objectLock !== undefined }))),
        }, { ...inReplica, dependsOn: [replicaPublic], aliases: [{ name: `${name}-replica-tls-only` }] });
        if (args.objectLock) {
            // Replicated versions keep their source retention; this covers anything else written here.
            new aws.s3.BucketObjectLockConfiguration(`${name}-replica-object-lock`, {
                bucket: replica.id,
                objectLockEnabled: "Enabled",
                rule: { defaultRetention: { mode: args.objectLock.mode, days: args.objectLock.days } },
            }, { ...inReplica, dependsOn: [replicaVersioning] });
        }
        new aws.s3.BucketLifecycleConfiguration(`${name}-replica-lifecycle`, {
            bucket: replica.id,
            rules: s3LifecycleRules(args.prefix, args.folders, args.noncurrentVersionDays ?? 7),
        }, { ...inReplica, dependsOn: [replicaVersioning] });

        const role = new aws.iam.Role(`${name}-replication-role`, {
            assumeRolePolicy: JSON.stringify({
                Version: "2012-10-17",
                Statement: [{ Effect: "Allow", Principal: { Service: "s3.amazonaws.com" }, Action: "sts:AssumeRole" }],
            }),
            tags,
        }, { parent: this });
        new aws.iam.RolePolicy(`${name}-replication-policy`, {
            role: role.id,
            policy: pulumi
                .all([source.arn, replica.arn, sourceKey.arn, key.arn])
                .apply(([s, r, sk, rk]) => JSON.stringify(replicationPolicy(s, r, sk, rk))),
        }, { parent: this });
        new aws.s3.BucketReplicationConfig(`${name}-replication`, {
            bucket: source.id,
            role: role.arn,
            rules: [{
                id: "replicate-backups",
                status: "Enabled",
                filter: { prefix: `${args.prefix.replace(/\/+$/, "")}/` },
                deleteMarkerReplication: { status: "Disabled" },
                sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: "Enabled" } },
                destination: {
                    bucket: replica.arn,
                    storageClass: "STANDARD_IA",
                    encryptionConfiguration: { replicaKmsKeyId: key.arn },
                },
            }],
        }, { parent: this, dependsOn: [sourceVersioning, replicaVersioning] });
        return replica.bucket;
    }
}
