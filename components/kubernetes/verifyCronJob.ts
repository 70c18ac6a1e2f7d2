import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { renderEnv } from "../../jobs/src/settings";
import { scratchPostgresImage } from "../image/pins";
import { BACKUP_MOUNT } from "./backupCronJob";
import { jobTimings } from "./timing";
import { containerSecurityContext, cronJobSpec, labels, ScheduledJobArgs } from "./workload";

/** UID of the postgres user in the official postgres:*-alpine images. */
export const POSTGRES_UID = 70;

/** The scratch server's port inside the pod; it listens on localhost only. */
export const SCRATCH_PORT = 5432;

/** Where verify downloads the backup it restores (an emptyDir as large as the scratch data). */
export const WORK_MOUNT = "/work";

export interface VerifyCronJobArgs extends ScheduledJobArgs {
    readonly database: string;
    /** Major version of the source server: the scratch server runs the same (image pinned in jobs/image-pins.json). */
    readonly postgresMajor: number;
    readonly pvcName?: pulumi.Input<string>;
    /** Size of the scratch data volume and of the download space, GiB each. Default: 20. */
    readonly scratchGi?: number;
}

/**
 * One database's scheduled `kx-backup verify`: restores the newest backup into a throwaway
 * PostgreSQL running as a native sidecar in the same pod, on an emptyDir, so verification never
 * touches production.
 */
export class VerifyCronJob extends pulumi.ComponentResource {
    public readonly cronJobName: pulumi.Output<string>;

    constructor(name: string, args: VerifyCronJobArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:VerifyCronJob", name, {}, opts);
        const scratchGi = args.scratchGi ?? 20;
        const scratchSize = `${scratchGi}Gi`;
        const meta = labels("verify", args.database);

        const scratch: k8s.types.input.core.v1.Container = {
            name: "scratch-postgres",
            image: scratchPostgresImage(args.postgresMajor),
            // Native sidecar (Kubernetes ≥ 1.29): started before, stopped after the main container.
            restartPolicy: "Always",
            args: ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"],
            env: [
                { name: "PGDATA", value: "/var/lib/postgresql/data/pgdata" },
                // Reachable only on the pod's loopback, and thrown away with the pod.
                { name: "POSTGRES_HOST_AUTH_METHOD", value: "trust" },
            ],
            securityContext: { ...containerSecurityContext(), runAsUser: POSTGRES_UID, runAsGroup: POSTGRES_UID },
            startupProbe: {
                exec: { command: ["pg_isready", "-h", "127.0.0.1", "-p", String(SCRATCH_PORT)] },
                periodSeconds: 2,
                failureThreshold: 60,
            },
            resources: {
                // The restored database lives on scratch-data: request that room on the node.
                requests: { cpu: args.resources.cpuRequest, memory: args.resources.memoryRequest, "ephemeral-storage": scratchSize },
                limits: { cpu: args.resources.cpuLimit, memory: "1Gi" },
            },
            volumeMounts: [
                { name: "scratch-data", mountPath: "/var/lib/postgresql/data" },
                { name: "scratch-run", mountPath: "/var/run/postgresql" },
                { name: "tmp", mountPath: "/tmp" },
            ],
        };

        // The scratch server and the download space, named through the job's settings module.
        const env = pulumi.output(args.env).apply((e) => [
            ...e,
            ...renderEnv({ verifyPgHost: "127.0.0.1", verifyPgPort: SCRATCH_PORT, verifyPgUser: "postgres", workDir: WORK_MOUNT }),
        ]);

        const cronJob = new k8s.batch.v1.CronJob(`${name}-cronjob`, {
            metadata: { name: args.cronJobName, namespace: args.namespace, labels: meta, annotations: args.annotations },
            spec: cronJobSpec({
                schedule: args.schedule,
                podLabels: { ...meta, ...args.extraPodLabels },
                serviceAccountName: args.serviceAccountName,
                image: args.image,
                args: ["verify"],
                env,
                resources: args.resources,
                sidecars: [scratch],
                volumes: [
                    { name: "scratch-data", emptyDir: { sizeLimit: scratchSize } },
                    { name: "scratch-run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
                    { name: "work", emptyDir: { sizeLimit: scratchSize } },
                    ...(args.pvcName ? [{ name: "backups", persistentVolumeClaim: { claimName: args.pvcName } }] : []),
                ],
                // Writable: verify records its result (.verify.json) beside the backup it checked.
                volumeMounts: [{ name: "work", mountPath: WORK_MOUNT }, ...(args.pvcName ? [{ name: "backups", mountPath: BACKUP_MOUNT }] : [])],
                // The downloaded backup lands in /work.
                scratchGi,
                // 2 h by default (the runbook's full-restore RTO), always inside the schedule's shortest gap.
                timings: jobTimings("verify", args.schedule),
            }),
        }, { parent: this });

        this.cronJobName = cronJob.metadata.name;
        this.registerOutputs({ cronJobName: this.cronJobName });
    }
}
