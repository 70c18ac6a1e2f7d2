import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { jobTimings } from "./timing";
import { cronJobSpec, labels, ScheduledJobArgs } from "./workload";

/** Where the backup PVC is mounted, as in the runbook's CronJob (§5.3). */
export const BACKUP_MOUNT = "/backups";

export interface BackupCronJobArgs extends ScheduledJobArgs {
    readonly database: string;
    /** The backup PVC, mounted at /backups; none when the local target is off. */
    readonly pvcName?: pulumi.Input<string>;
}

/** One database's scheduled `kx-backup backup`. */
export class BackupCronJob extends pulumi.ComponentResource {
    public readonly cronJobName: pulumi.Output<string>;

    constructor(name: string, args: BackupCronJobArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:BackupCronJob", name, {}, opts);
        const meta = labels("backup", args.database);

        const cronJob = new k8s.batch.v1.CronJob(`${name}-cronjob`, {
            metadata: { name: args.cronJobName, namespace: args.namespace, labels: meta, annotations: args.annotations },
            spec: cronJobSpec({
                schedule: args.schedule,
                podLabels: { ...meta, ...args.extraPodLabels },
                serviceAccountName: args.serviceAccountName,
                image: args.image,
                args: ["backup"],
                env: args.env,
                resources: args.resources,
                volumes: args.pvcName ? [{ name: "backups", persistentVolumeClaim: { claimName: args.pvcName } }] : [],
                volumeMounts: args.pvcName ? [{ name: "backups", mountPath: BACKUP_MOUNT }] : [],
                // 4 h by default, always inside the schedule's shortest gap: runs never pile up.
                timings: jobTimings("backup", args.schedule),
            }),
        }, { parent: this });

        this.cronJobName = cronJob.metadata.name;
        this.registerOutputs({ cronJobName: this.cronJobName });
    }
}
