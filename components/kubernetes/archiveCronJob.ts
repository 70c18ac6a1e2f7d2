import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { BACKUP_MOUNT } from "./backupCronJob";
import { jobTimings } from "./timing";
import { cronJobSpec, labels, ScheduledJobArgs } from "./workload";

/** Where an archived volume is mounted (read-only). */
export const SOURCE_MOUNT = "/data";

export interface ArchiveCronJobArgs extends ScheduledJobArgs {
    /** Archive name (folder and file names). */
    readonly name: string;
    /** What to archive: an existing PVC, mounted read-only at /data; or a namespace's configuration. */
    readonly source: { readonly pvc: string } | { readonly namespace: string };
    /** The backup PVC (local target), mounted at /backups. Default: none. */
    readonly backupPvcName?: pulumi.Input<string>;
}

/**
 * A scheduled `kx-backup archive`: a volume (mounted read-only, so the backup can never change
 * it) or the namespace's ConfigMaps and Secrets (only uploaded when they changed).
 */
export class ArchiveCronJob extends pulumi.ComponentResource {
    public readonly cronJobName: pulumi.Output<string>;

    constructor(name: string, args: ArchiveCronJobArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:ArchiveCronJob", name, {}, opts);
        const meta = labels("archive", args.name);
        const fromPvc = "pvc" in args.source;
        const jobArgs = fromPvc
            ? ["archive", "--name", args.name, "--path", SOURCE_MOUNT]
            : ["archive", "--name", args.name, "--kubernetes-namespace", (args.source as { namespace: string }).namespace, "--if-changed"];
        const volumes: k8s.types.input.core.v1.Volume[] = [];
        const mounts: k8s.types.input.core.v1.VolumeMount[] = [];
        if (fromPvc) {
            volumes.push({ name: "source", persistentVolumeClaim: { claimName: (args.source as { pvc: string }).pvc, readOnly: true } });
            mounts.push({ name: "source", mountPath: SOURCE_MOUNT, readOnly: true });
        }
        if (args.backupPvcName) {
            volumes.push({ name: "backups", persistentVolumeClaim: { claimName: args.backupPvcName } });
            mounts.push({ name: "backups", mountPath: BACKUP_MOUNT });
        }
        const cronJob = new k8s.batch.v1.CronJob(`${name}-cronjob`, {
            metadata: { name: args.cronJobName, namespace: args.namespace, labels: meta, annotations: args.annotations },
            spec: cronJobSpec({
                schedule: args.schedule,
                podLabels: { ...meta, ...args.extraPodLabels },
                serviceAccountName: args.serviceAccountName,
                image: args.image,
                args: jobArgs,
                env: args.env,
                resources: args.resources,
                volumes,
                volumeMounts: mounts,
                apiToken: !fromPvc,
                timings: jobTimings("archive", args.schedule),
            }),
        }, { parent: this });
        this.cronJobName = cronJob.metadata.name;
        this.registerOutputs({ cronJobName: this.cronJobName });
    }
}
