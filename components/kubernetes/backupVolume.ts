import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labels } from "./workload";

export interface BackupVolumeArgs {
    readonly namespace: pulumi.Input<string>;
    /** PVC name. */
    readonly claimName: string;
    /** Requested size, e.g. "50Gi". */
    readonly size: string;
    /** StorageClass. Default: the cluster's default class. */
    readonly storageClass?: string;
}

/** The PVC the backup CronJobs mount at /backups (the runbook's local copy). */
export class BackupVolume extends pulumi.ComponentResource {
    public readonly claimName: pulumi.Output<string>;

    constructor(name: string, args: BackupVolumeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:BackupVolume", name, {}, opts);
        const pvc = new k8s.core.v1.PersistentVolumeClaim(`${name}-pvc`, {
            metadata: { name: args.claimName, namespace: args.namespace, labels: labels("storage") },
            spec: {
                accessModes: ["ReadWriteOnce"],
                storageClassName: args.storageClass,
                resources: { requests: { storage: args.size } },
            },
        }, {
            parent: this,
            // Backups outlive a mistaken `pulumi destroy` of the stack.
            retainOnDelete: true,
        });
        this.claimName = pvc.metadata.name;
        this.registerOutputs({ claimName: this.claimName });
    }
}
