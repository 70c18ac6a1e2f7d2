import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { bucketBaseName, CONFIG_ARCHIVE_NAME, cronJobName, kubeName, StackConfig, storageAccountName } from "./config";
import { JobImage } from "./image/jobImage";
import { archiveEnv, jobEnv, ResolvedTargets } from "./jobEnv";
import { ArchiveCronJob } from "./kubernetes/archiveCronJob";
import { ConfigReader } from "./kubernetes/configReader";
import { BackupCronJob } from "./kubernetes/backupCronJob";
import { BackupNetworkPolicy } from "./kubernetes/networkPolicy";
import { BackupSecrets } from "./kubernetes/backupSecrets";
import { BackupVolume } from "./kubernetes/backupVolume";
import { VerifyCronJob } from "./kubernetes/verifyCronJob";
import { ANNOTATIONS, labels } from "./kubernetes/workload";
import { databasePrefix } from "../jobs/src/naming";
import { AzureBackupStorage } from "./storage/azureBackupStorage";
import { S3BackupBucket } from "./storage/s3BackupBucket";

export interface BackupSystemArgs {
    /** The validated stack config (components/config.ts). */
    readonly config: StackConfig;
    /** Database passwords by name (a Pulumi secret). */
    readonly dbPasswords: pulumi.Input<Record<string, string>>;
    /** ntfy topic URL (a Pulumi secret); required when notifications.ntfy is on. */
    readonly ntfyUrl?: pulumi.Input<string>;
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
        const serviceAccountName = c.namePrefix;
        const configServiceAccountName = `${c.namePrefix}-config`;
        const serviceAccounts = c.configBackup ? [serviceAccountName, configServiceAccountName] : [serviceAccountName];
        const parent = { parent: this };
        // One lifecycle rule per folder with a retention; the configuration export keeps everything unless told otherwise.
        const retention = [
            ...c.databases.map((d) => ({ name: d.name, retentionDays: d.retentionDays })),
            ...c.volumes.map((v) => ({ name: v.name, retentionDays: v.retentionWeeks * 7 })),
            ...(c.configBackup?.retentionDays ? [{ name: CONFIG_ARCHIVE_NAME, retentionDays: c.configBackup.retentionDays }] : []),
        ];
        const tags = { environment: c.stack };

        const image = new JobImage(`${name}-image`, c.image, parent);

        const volume = c.targets.pvc
            ? new BackupVolume(`${name}-volume`, {
                namespace: ns,
                claimName: `${c.namePrefix}-pvc`,
                size: c.targets.pvc.size,
                storageClass: c.targets.pvc.storageClass,
            }, parent)
            : undefined;

        const s3 = c.targets.s3
            ? new S3BackupBucket(`${name}-s3`, {
                bucketNamePrefix: bucketBaseName(c.namePrefix, c.stack),
                prefix: c.targets.s3.prefix,
                databases: retention,
                noncurrentVersionDays: c.targets.s3.noncurrentVersionDays,
                objectLock: c.targets.s3.objectLock,
                replicaRegion: c.targets.s3.replicaRegion,
                access: c.targets.s3.access,
                irsa: c.kubernetes.irsa && {
                    ...c.kubernetes.irsa,
                    namespace: ns,
                    serviceAccounts,
                },
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
                databases: retention,
                noncurrentVersionDays: c.targets.azure.noncurrentVersionDays,
                softDeleteDays: c.targets.azure.softDeleteDays,
                immutabilityDays: c.targets.azure.immutabilityDays,
                access: c.targets.azure.access,
                workloadIdentity: c.kubernetes.azureOidcIssuer
                    ? { oidcIssuer: c.kubernetes.azureOidcIssuer, namespace: ns, serviceAccounts }
                    : undefined,
                tags,
            }, parent)
            : undefined;

        const secrets = new BackupSecrets(`${name}-secrets`, {
            namespace: ns,
            namePrefix: c.namePrefix,
            dbPasswords: args.dbPasswords,
            databases: c.databases.map((d) => ({ name: d.name, kubeName: kubeName(d.name) })),
            ntfyUrl: c.notifications.ntfy ? args.ntfyUrl : undefined,
            aws: s3?.accessKeyId && s3.secretAccessKey ? { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } : undefined,
            azureConnectionString: az?.connectionString,
        }, parent);

        const annotations: Record<string, pulumi.Input<string>> = {};
        if (s3?.roleArn) {
            annotations["eks.amazonaws.com/role-arn"] = s3.roleArn;
        }
        if (az?.clientId) {
            annotations["azure.workload.identity/client-id"] = az.clientId;
        }
        const serviceAccount = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
            metadata: { name: serviceAccountName, namespace: ns, labels: labels("backup"), annotations },
            automountServiceAccountToken: false,
        }, parent);
        const extraPodLabels: Record<string, string> = az?.clientId ? { "azure.workload.identity/use": "true" } : {};
        /** Plain facts on each CronJob for the policy pack (its env may be unknown at preview). */
        const facts = (name: string, retentionDays: number | undefined): Record<string, string> => {
            const out: Record<string, string> = { [ANNOTATIONS.database]: name };
            if (retentionDays !== undefined) {
                out[ANNOTATIONS.retentionDays] = String(retentionDays);
                if (c.targets.s3) {
                    out[ANNOTATIONS.s3Prefix] = databasePrefix(c.targets.s3.prefix, name);
                }
                if (c.targets.azure) {
                    out[ANNOTATIONS.azurePrefix] = `${c.targets.azure.containerName}/${databasePrefix(c.targets.azure.prefix, name)}`;
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

        for (const db of c.databases) {
            const env = targets.apply((t) =>
                jobEnv(db, t, {
                    password: secrets.passwordRefs[db.name],
                    ntfyUrl: secrets.ntfyUrlRef,
                    aws: secrets.awsRefs,
                    azureConnectionString: secrets.azureConnectionStringRef,
                }),
            );
            const common = {
                annotations: facts(db.name, db.retentionDays),
                namespace: ns,
                database: db.name,
                image: image.imageRef,
                serviceAccountName: serviceAccount.metadata.name,
                env,
                pvcName: volume?.claimName,
                resources: c.kubernetes.resources,
                extraPodLabels,
            };
            const backup = new BackupCronJob(`${name}-backup-${kubeName(db.name)}`, {
                ...common,
                cronJobName: cronJobName(c.namePrefix, db.name, "backup"),
                schedule: db.schedule,
            }, parent);
            const verify = new VerifyCronJob(`${name}-verify-${kubeName(db.name)}`, {
                ...common,
                cronJobName: cronJobName(c.namePrefix, db.name, "verify"),
                schedule: db.verifySchedule,
                postgresMajor: db.postgresMajor,
            }, parent);
            this.backupCronJobs[db.name] = backup.cronJobName;
            this.verifyCronJobs[db.name] = verify.cronJobName;
        }

        const refs = {
            ntfyUrl: secrets.ntfyUrlRef,
            aws: secrets.awsRefs,
            azureConnectionString: secrets.azureConnectionStringRef,
        };
        for (const vol of c.volumes) {
            const days = vol.retentionWeeks * 7;
            const job = new ArchiveCronJob(`${name}-archive-${vol.name}`, {
                namespace: ns,
                cronJobName: cronJobName(c.namePrefix, vol.name, "archive"),
                name: vol.name,
                schedule: vol.schedule,
                image: image.imageRef,
                serviceAccountName: serviceAccount.metadata.name,
                env: targets.apply((t) => archiveEnv({ retentionDays: days, keepMin: vol.keepMin }, t, refs)),
                source: { pvc: vol.pvc },
                backupPvcName: volume?.claimName,
                resources: c.kubernetes.resources,
                extraPodLabels,
                annotations: facts(vol.name, days),
            }, parent);
            this.archiveCronJobs[vol.name] = job.cronJobName;
        }
        if (c.configBackup) {
            const configSa = new k8s.core.v1.ServiceAccount(`${name}-config-sa`, {
                metadata: { name: configServiceAccountName, namespace: ns, labels: labels("archive"), annotations },
                automountServiceAccountToken: false,
            }, parent);
            new ConfigReader(`${name}-config-reader`, { namespace: ns, serviceAccountName: configSa.metadata.name, roleName: `${c.namePrefix}-config-reader` }, parent);
            const retentionDays = c.configBackup.retentionDays;
            const job = new ArchiveCronJob(`${name}-archive-config`, {
                namespace: ns,
                cronJobName: cronJobName(c.namePrefix, CONFIG_ARCHIVE_NAME, "archive"),
                name: CONFIG_ARCHIVE_NAME,
                schedule: c.configBackup.schedule,
                image: image.imageRef,
                serviceAccountName: configSa.metadata.name,
                // Secrets go only to encrypted targets: no local copy on the PVC.
                env: targets.apply((t) => archiveEnv({ retentionDays, keepMin: 1 }, { ...t, local: false }, refs)),
                source: { namespace: ns },
                resources: c.kubernetes.resources,
                extraPodLabels,
                annotations: facts(CONFIG_ARCHIVE_NAME, retentionDays),
            }, parent);
            this.archiveCronJobs[CONFIG_ARCHIVE_NAME] = job.cronJobName;
        }

        new BackupNetworkPolicy(`${name}-network`, {
            namespace: ns,
            policyName: `${c.namePrefix}-egress`,
            databasePorts: c.databases.map((d) => d.port),
            databaseCidrs: c.kubernetes.databaseCidrs,
        }, parent);

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
}
