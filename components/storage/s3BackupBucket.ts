import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { RetentionInput, s3LifecycleRules } from "./lifecycle";
import { denyInsecureTransport, irsaTrustPolicy, jobAccessPolicy, replicationPolicy } from "./s3Policies";

export interface S3BackupBucketArgs {
    /** Base of the bucket name; Pulumi appends a random suffix so names never collide. */
    readonly bucketNamePrefix: string;
    /** Key prefix the job writes under. */
    readonly prefix: string;
    /** One lifecycle rule per database folder, expiring at its retention. */
    readonly databases: readonly RetentionInput[];
    /** Days a noncurrent version survives. Default: 7. */
    readonly noncurrentVersionDays?: number;
    /** Object lock default retention (WORM). Default: none. Needs a new bucket: lock cannot be added later. */
    readonly objectLock?: { readonly mode: "GOVERNANCE" | "COMPLIANCE"; readonly days: number };
    /** A second region receiving every backup (region-failure scenario). Default: none. */
    readonly replicaRegion?: string;
    /**
     * How the job authenticates. `irsa`: a role its ServiceAccount assumes (needs `irsa`).
     * `static-keys`: an IAM user and access key, for dev clusters without OIDC.
     */
    readonly access: "irsa" | "static-keys";
    /** IRSA: the cluster's OIDC provider and the ServiceAccounts allowed to assume the role. */
    readonly irsa?: {
        readonly oidcProviderArn: string;
        readonly oidcIssuer: string;
        readonly namespace: string;
        readonly serviceAccounts: readonly string[];
    };
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
    /** IRSA role the ServiceAccount is annotated with (irsa access). */
    public readonly roleArn?: pulumi.Output<string>;
    /** Static credentials (static-keys access); the secret half is a Pulumi secret. */
    public readonly accessKeyId?: pulumi.Output<string>;
    public readonly secretAccessKey?: pulumi.Output<string>;
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
        }, parent);

        const bucket = new aws.s3.Bucket(`${name}-bucket`, {
            bucketPrefix: `${args.bucketNamePrefix}-`,
            objectLockEnabled: args.objectLock !== undefined,
            forceDestroy: false,
            tags,
        }, parent);
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

        new aws.s3.BucketPolicy(`${name}-tls-only`, {
            bucket: bucket.id,
            policy: bucket.arn.apply((arn) => JSON.stringify(denyInsecureTransport(arn))),
        }, { parent: this, dependsOn: [publicAccess] });

        // Lifecycle rules on a versioned bucket must wait for versioning, or noncurrent rules race it.
        new aws.s3.BucketLifecycleConfiguration(`${name}-lifecycle`, {
            bucket: bucket.id,
            rules: s3LifecycleRules(args.prefix, args.databases, noncurrentDays),
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

        const access = new aws.iam.Policy(`${name}-job-access`, {
            description: "kx-backup: read and write backups under the prefix, with the bucket key",
            policy: pulumi
                .all([bucket.arn, key.arn])
                .apply(([b, k]) => JSON.stringify(jobAccessPolicy(b, args.prefix, k))),
            tags,
        }, parent);

        if (args.access === "irsa") {
            if (!args.irsa) {
                throw new Error("S3BackupBucket: access irsa needs args.irsa (the cluster's OIDC provider)");
            }
            const irsa = args.irsa;
            const role = new aws.iam.Role(`${name}-job-role`, {
                description: "kx-backup job, assumed by its ServiceAccount through IRSA",
                assumeRolePolicy: JSON.stringify(
                    irsaTrustPolicy(irsa.oidcProviderArn, irsa.oidcIssuer, irsa.namespace, irsa.serviceAccounts),
                ),
                tags,
            }, parent);
            new aws.iam.RolePolicyAttachment(`${name}-job-role-access`, { role: role.name, policyArn: access.arn }, parent);
            this.roleArn = role.arn;
        } else {
            const user = new aws.iam.User(`${name}-job-user`, { tags }, parent);
            new aws.iam.UserPolicyAttachment(`${name}-job-user-access`, { user: user.name, policyArn: access.arn }, parent);
            const accessKey = new aws.iam.AccessKey(`${name}-job-key`, { user: user.name }, parent);
            this.accessKeyId = accessKey.id;
            this.secretAccessKey = pulumi.secret(accessKey.secret);
        }

        this.bucketName = bucket.bucket;
        this.bucketArn = bucket.arn;
        this.kmsKeyArn = key.arn;
        this.region = bucket.region;
        this.registerOutputs({
            bucketName: this.bucketName,
            bucketArn: this.bucketArn,
            kmsKeyArn: this.kmsKeyArn,
            roleArn: this.roleArn,
            replicaBucketName: this.replicaBucketName,
        });
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
        }, inReplica);
        const replica = new aws.s3.Bucket(`${name}-replica`, {
            bucketPrefix: `${args.bucketNamePrefix}-replica-`,
            objectLockEnabled: args.objectLock !== undefined,
            tags,
        }, inReplica);
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
        new aws.s3.BucketPolicy(`${name}-replica-tls-only`, {
            bucket: replica.id,
            policy: replica.arn.apply((arn) => JSON.stringify(denyInsecureTransport(arn))),
        }, { ...inReplica, dependsOn: [replicaPublic] });
        new aws.s3.BucketLifecycleConfiguration(`${name}-replica-lifecycle`, {
            bucket: replica.id,
            rules: s3LifecycleRules(args.prefix, args.databases, args.noncurrentVersionDays ?? 7),
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
