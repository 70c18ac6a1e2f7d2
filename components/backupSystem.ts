import * as aws from "@pulumi/aws";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { databasePrefix } from "../jobs/src/naming";
import { bucketBaseName, CONFIG_ARCHIVE_NAME, cronJobName, ecrRegistry, ImageConfig, kubeName, StackConfig, storageAccountName } from "./config";
import { IdentityKey, jobIdentities } from "./identities";
import { JobImage, RegistryCredentials } from "./image/jobImage";
import { archiveEnv, databaseEnv, JobContext, ResolvedTargets, SecretRefs } from "./jobEnv";
import { ArchiveCronJob } from "./kubernetes/archiveCronJob";
import { BackupCronJob } from "./kubernetes/backupCronJob";
import { BackupNetworkPolicy } from "./kubernetes/networkPolicy";
import { BackupSecrets } from "./kubernetes/backupSecrets";
import { BackupVolume } from "./kubernetes/backupVolume";
import { ConfigReader } from "./kubernetes/configReader";
import { VerifyCronJob } from "./kubernetes/verifyCronJob";
import { ANNOTATIONS, labels } from "./kubernetes/workload";
import { BackupMonitoring } from "./monitoring";
import { AzureBackupStorage } from "./storage/azureBackupStorage";
import { S3BackupBucket } from "./storage/s3BackupBucket";

export interface BackupSystemArgs {
    /** The validated stack config (components/config). */
    readonly config: StackConfig;
    /** Database passwords by name (a Pulumi secret). */
    readonly dbPasswords: pulumi.Input<Record<string, string>>;
    /** ntfy topic URL (a Pulumi secret); required when notifications.ntfy is on. */
    readonly ntfyUrl?: pulumi.Input<string>;
    /** Manifest signing key (a Pulumi secret). Default: generated once and kept in the stack's state. */
    readonly signingKey?: pulumi.Input<string>;
    /** A whole kubeconfig (a Pulumi secret). Default: the provider reads KUBECONFIG / ~/.kube/config. */
    readonly kubeconfig?: pulumi.Input<string>;
    /** Push password for a registry other than ECR (a Pulumi secret). */
    readonly registryPassword?: pulumi.Input<string>;
}

/** The whole backup system of one environment, composed from the validated config. */
export class BackupSystem extends pulumi.ComponentResource {
    public readonly imageRef: pulumi.Output<string>;
    public readonly bucketName?: pulumi.Output<string>;
    public readonly replicaBucketName?: pulumi.Output<string>;
    public readonly storageAccountName?: pulumi.Output<string>;
    public readonly containerName?: pulumi.Output<string>;
    public readonly pvcName?: pulumi.Output<string>;
    public readonly backupCronJobs: Record<string, pulumi.Output<string>> = {};
    public readonly verifyCronJobs: Record<string, pulumi.Output<string>> = {};
    public readonly archiveCronJobs: Record<string, pulumi.Output<string>> = {};

    constructor(name: string, args: BackupSystemArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:BackupSystem", name, {}, opts);
        const c = args.config;
        const ns = c.kubernetes.namespace;
        const parent = { parent: this };
        // Every Kubernetes resource goes to this stack's cluster, named by context: never the
        // ambient current-context (a dev deploy could otherwise land on prod).
        const cluster = new k8s.Provider(`${name}-cluster`, {
            context: c.kubernetes.context,
            kubeconfig: args.kubeconfig,
        }, parent);
        const inCluster = { parent: this, provider: cluster };
        const identities = jobIdentities(c);
        // One lifecycle rule per folder: databases and volumes expire at their retention; the
        // configuration export is kept indefinitely unless told otherwise (clean-up rules only).
        const folders = [
            ...c.databases.map((d) => ({ name: d.name, retentionDays: d.retentionDays })),
            ...c.volumes.map((v) => ({ name: v.name, retentionDays: v.retentionWeeks * 7 })),
            ...(c.configBackup ? [{ name: CONFIG_ARCHIVE_NAME, retentionDays: c.configBackup.retentionDays }] : []),
        ];
        const tags = { environment: c.stack };

        const image = new JobImage(`${name}-image`, {
            ...c.image,
            registry: c.image.build ? this.registryCredentials(c.image, args.registryPassword) : undefined,
        }, parent);

        const volume = c.targets.pvc
            ? new BackupVolume(`${name}-volume`, {
                namespace: ns,
                claimName: `${c.namePrefix}-pvc`,
                size: c.targets.pvc.size,
                storageClass: c.targets.pvc.storageClass,
            }, inCluster)
            : undefined;

        const s3 = c.targets.s3
            ? new S3BackupBucket(`${name}-s3`, {
                bucketNamePrefix: bucketBaseName(c.namePrefix, c.stack),
                prefix: c.targets.s3.prefix,
                folders,
                noncurrentVersionDays: c.targets.s3.noncurrentVersionDays,
                objectLock: c.targets.s3.objectLock,
                replicaRegion: c.targets.s3.replicaRegion,
                access: c.targets.s3.access,
                identities,
                irsa: c.kubernetes.oidcIssuer ? { oidcIssuer: c.kubernetes.oidcIssuer, namespace: ns } : undefined,
                tags,
            }, parent)
            : undefined;

        const az = c.targets.azure
            ? new AzureBackupStorage(`${name}-azure`, {
                resourceGroupName: c.targets.azure.resourceGroup,
                location: c.targets.azure.location,
                accountName: c.targets.azure.accountName ?? storageAccountName(c.namePrefix, c.stack),
                containerName: c.targets.azure.containerName,
                prefix: c.targets.azure.prefix,
                folders,
                noncurrentVersionDays: c.targets.azure.noncurrentVersionDays,
                softDeleteDays: c.targets.azure.softDeleteDays,
                immutability: c.targets.azure.immutability,
                access: c.targets.azure.access,
                identities,
                workloadIdentity: c.kubernetes.oidcIssuer ? { oidcIssuer: c.kubernetes.oidcIssuer, namespace: ns } : undefined,
                tags,
            }, parent)
            : undefined;

        const signingKey = args.signingKey ?? new random.RandomPassword(`${name}-signing-key`, {
            length: 64,
            special: false,
        }, {
            ...parent,
            // Losing it makes every signed backup refuse to restore: never replaced, never deleted with the stack.
            protect: true,
            retainOnDelete: true,
        }).result;

        const secrets = new BackupSecrets(`${name}-secrets`, {
            namespace: ns,
            namePrefix: c.namePrefix,
            dbPasswords: args.dbPasswords,
            databases: c.databases.map((d) => d.name),
            signingKey,
            ntfyUrl: c.notifications.ntfy ? args.ntfyUrl : undefined,
            awsKeys: s3?.staticKeys,
            azureConnectionString: az?.connectionString,
        }, inCluster);

        // One ServiceAccount per identity, annotated with that identity's role and client id.
        const serviceAccounts = {} as Record<IdentityKey, pulumi.Output<string>>;
        for (const identity of identities) {
            const annotations: Record<string, pulumi.Input<string>> = {};
            const roleArn = s3?.roleArns[identity.key];
            const clientId = az?.clientIds[identity.key];
            if (roleArn) {
                annotations["eks.amazonaws.com/role-arn"] = roleArn;
            }
            if (clientId) {
                annotations["azure.workload.identity/client-id"] = clientId;
            }
            const sa = new k8s.core.v1.ServiceAccount(`${name}-${identity.key === "jobs" ? "sa" : "config-sa"}`, {
                metadata: { name: identity.serviceAccount, namespace: ns, labels: labels(identity.key === "jobs" ? "backup" : "archive"), annotations },
                automountServiceAccountToken: false,
            }, inCluster);
            serviceAccounts[identity.key] = sa.metadata.name;
        }
        const extraPodLabels: Record<string, string> = c.targets.azure?.access === "workload-identity" ? { "azure.workload.identity/use": "true" } : {};
        /** Plain facts on each CronJob for the policy pack (its env may be unknown at preview). */
        const facts = (folder: string, retentionDays: number | undefined): Record<string, string> => {
            const out: Record<string, string> = { [ANNOTATIONS.database]: folder };
            if (retentionDays !== undefined) {
                out[ANNOTATIONS.retentionDays] = String(retentionDays);
                if (c.targets.s3) {
                    out[ANNOTATIONS.s3Prefix] = databasePrefix(c.targets.s3.prefix, folder);
                }
                if (c.targets.azure) {
                    out[ANNOTATIONS.azurePrefix] = `${c.targets.azure.containerName}/${databasePrefix(c.targets.azure.prefix, folder)}`;
                }
            }
            return out;
        };

        const targets: pulumi.Output<ResolvedTargets> = pulumi
            .all([s3?.bucketName, az?.containerName, az?.accountUrl])
            .apply(([bucket, container, accountUrl]) => ({
                local: volume !== undefined,
                s3: c.targets.s3 && bucket ? { bucket, prefix: c.targets.s3.prefix, region: c.targets.s3.region } : undefined,
                azure: c.targets.azure && container ? { container, prefix: c.targets.azure.prefix, accountUrl } : undefined,
            }));
        const refsOf = (key: IdentityKey): SecretRefs => ({
            ntfyUrl: secrets.ntfyUrlRef,
            aws: secrets.awsRefs[key],
            azureConnectionString: secrets.azureConnectionStringRef,
            signingKey: secrets.signingKeyRef,
        });
        const context = (key: IdentityKey, t: ResolvedTargets): JobContext => ({ targets: t, refs: refsOf(key), pushgatewayUrl: c.monitoring.pushgatewayUrl });

        for (const db of c.databases) {
            const password = secrets.passwordRefs[db.name];
            const common = {
                annotations: facts(db.name, db.retentionDays),
                namespace: ns,
                database: db.name,
                image: image.imageRef,
                serviceAccountName: serviceAccounts.jobs,
                pvcName: volume?.claimName,
                resources: c.kubernetes.resources,
                extraPodLabels,
            };
            const backup = new BackupCronJob(`${name}-backup-${kubeName(db.name)}`, {
                ...common,
                cronJobName: cronJobName(c.namePrefix, db.name, "backup"),
                schedule: db.schedule,
                env: targets.apply((t) => databaseEnv(db, context("jobs", t), password, "backup")),
            }, inCluster);
            // Verify checks every configured target (no --from): it gets every target's settings and credentials.
            const verify = new VerifyCronJob(`${name}-verify-${kubeName(db.name)}`, {
                ...common,
                cronJobName: cronJobName(c.namePrefix, db.name, "verify"),
                schedule: db.verifySchedule,
                postgresMajor: db.postgresMajor,
                scratchGi: c.kubernetes.verifyScratchGi,
                env: targets.apply((t) => databaseEnv(db, context("jobs", t), password, "verify")),
            }, inCluster);
            this.backupCronJobs[db.name] = backup.cronJobName;
            this.verifyCronJobs[db.name] = verify.cronJobName;
        }

        for (const vol of c.volumes) {
            const days = vol.retentionWeeks * 7;
            const job = new ArchiveCronJob(`${name}-archive-${vol.name}`, {
                namespace: ns,
                cronJobName: cronJobName(c.namePrefix, vol.name, "archive"),
                name: vol.name,
                schedule: vol.schedule,
                image: image.imageRef,
                serviceAccountName: serviceAccounts.jobs,
                env: targets.apply((t) => archiveEnv({ retentionDays: days, keepMin: vol.keepMin }, context("jobs", t))),
                source: { pvc: vol.pvc },
                backupPvcName: volume?.claimName,
                resources: c.kubernetes.resources,
                extraPodLabels,
                annotations: facts(vol.name, days),
            }, inCluster);
            this.archiveCronJobs[vol.name] = job.cronJobName;
        }
        if (c.configBackup) {
            new ConfigReader(`${name}-config-reader`, { namespace: ns, serviceAccountName: serviceAccounts.config, roleName: `${c.namePrefix}-config-reader` }, inCluster);
            const retentionDays = c.configBackup.retentionDays;
            const job = new ArchiveCronJob(`${name}-archive-config`, {
                namespace: ns,
                cronJobName: cronJobName(c.namePrefix, CONFIG_ARCHIVE_NAME, "archive"),
                name: CONFIG_ARCHIVE_NAME,
                schedule: c.configBackup.schedule,
                image: image.imageRef,
                // Its own ServiceAccount, cloud identities and (dev) keys: scoped to its own folder.
                serviceAccountName: serviceAccounts.config,
                // Secrets go only to encrypted targets: no local copy on the PVC.
                env: targets.apply((t) => archiveEnv({ retentionDays, keepMin: 1 }, context("config", { ...t, local: false }))),
                source: { namespace: ns },
                resources: c.kubernetes.resources,
                extraPodLabels,
                annotations: facts(CONFIG_ARCHIVE_NAME, retentionDays),
            }, inCluster);
            this.archiveCronJobs[CONFIG_ARCHIVE_NAME] = job.cronJobName;
        }

        new BackupNetworkPolicy(`${name}-network`, {
            namespace: ns,
            policyName: `${c.namePrefix}-egress`,
            databasePodPorts: c.databases.map((d) => d.podPort),
            databaseCidrs: c.kubernetes.databaseCidrs,
            pushgateway: c.monitoring.pushgatewayUrl && c.monitoring.pushgatewayPodPort
                ? { url: c.monitoring.pushgatewayUrl, podPort: c.monitoring.pushgatewayPodPort }
                : undefined,
        }, inCluster);

        if (c.monitoring.prometheusRule || c.monitoring.dashboard) {
            new BackupMonitoring(`${name}-monitoring`, { namespace: ns, namePrefix: c.namePrefix, databases: c.databases, monitoring: c.monitoring }, inCluster);
        }

        this.imageRef = image.imageRef;
        this.bucketName = s3?.bucketName;
        this.replicaBucketName = s3?.replicaBucketName;
        this.storageAccountName = az?.accountName;
        this.containerName = az?.containerName;
        this.pvcName = volume?.claimName;
        this.registerOutputs({
            imageRef: this.imageRef,
            bucketName: this.bucketName,
            storageAccountName: this.storageAccountName,
            containerName: this.containerName,
            backupCronJobs: this.backupCronJobs,
            verifyCronJobs: this.verifyCronJobs,
            archiveCronJobs: this.archiveCronJobs,
        });
    }

    /** Push credentials: a short-lived ECR token requested from the stack's AWS provider, or the configured login. */
    private registryCredentials(image: ImageConfig, password: pulumi.Input<string> | undefined): RegistryCredentials {
        const ecr = image.repository ? ecrRegistry(image.repository) : undefined;
        if (ecr) {
            const token = aws.ecr.getAuthorizationTokenOutput({ registryId: ecr.registryId }, { parent: this });
            return { server: ecr.server, username: token.userName, password: pulumi.secret(token.password) };
        }
        if (!image.repository || !image.registryUsername || password === undefined) {
            throw new Error("BackupSystem: a registry other than ECR needs image.registryUsername and the registryPassword secret");
        }
        return { server: image.repository.split("/")[0], username: image.registryUsername, password };
    }
}
