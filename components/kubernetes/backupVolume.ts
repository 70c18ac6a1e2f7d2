import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labels } from "./workload";

export interface BackupVolumeArgs {
    readonly namespace: pulumi.Input<string>;
    /** PVC name. */
    readonly claimName: string;
    /** Requested size, e.g. "50Gi". */
    readonly size: string;
    /** A StorageClass that provides ReadWriteMany (EFS, Azure Files, NFS). */
    readonly storageClass: string;
}

/**
 * The PVC the backup, verify and archive CronJobs mount at /backups (the runbook's local copy).
 * ReadWriteMany: those jobs run on their own schedules on any node, often at the same time; a
 * ReadWriteOnce volume would hold every other pod in Multi-Attach while one node has it.
 */
export class BackupVolume extends pulumi.ComponentResource {
    public readonly claimName: pulumi.Output<string>;

    constructor(name: string, args: BackupVolumeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:BackupVolume", name, {}, opts);
        const pvc = new k8s.core.v1.PersistentVolumeClaim(`${name}-pvc`, {
            metadata: { name: args.claimName, namespace: args.namespace, labels: labels("storage") },
            spec: {
                accessModes: ["ReadWriteMany"],
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
