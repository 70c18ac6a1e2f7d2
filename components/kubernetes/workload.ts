/**
 * The hardened shape every kx-backup CronJob shares, as pure functions: restricted pod security
 * (the Kubernetes "restricted" Pod Security Standard), labels, and the job spec. The backup and
 * verify components differ only in what they run, so they build on this one definition.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { EnvVar } from "../../jobs/src/settings";
import { JobTimings } from "./timing";

type Input<T> = pulumi.Input<T>;
type Container = k8s.types.input.core.v1.Container;
type Volume = k8s.types.input.core.v1.Volume;

export { ANNOTATIONS } from "./annotations";

/** The unprivileged user the job image runs as (see jobs/Dockerfile). */
export const JOB_UID = 10001;

export const APP_NAME = "kx-backup";

export function labels(component: "backup" | "verify" | "archive" | "storage" | "monitoring", database?: string): Record<string, string> {
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/part-of": "krystalinex-backup",
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/component": component,
        ...(database ? { "app.kubernetes.io/instance": database.replace(/_/g, "-") } : {}),
    };
}

export function podSecurityContext(uid = JOB_UID): k8s.types.input.core.v1.PodSecurityContext {
    return {
        runAsNonRoot: true,
        runAsUser: uid,
        runAsGroup: uid,
        fsGroup: uid,
        fsGroupChangePolicy: "OnRootMismatch",
        seccompProfile: { type: "RuntimeDefault" },
    };
}

export function containerSecurityContext(): k8s.types.input.core.v1.SecurityContext {
    return {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        privileged: false,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
    };
}

export interface Resources {
    readonly cpuRequest: string;
    readonly memoryRequest: string;
    readonly cpuLimit: string;
    readonly memoryLimit: string;
}

/** The pod's /tmp (an emptyDir), in GiB. */
export const TMP_GI = 1;

/**
 * Requests and limits. `scratchGi` is what the container writes to emptyDirs (its /tmp and any
 * scratch volume): requested as ephemeral storage, so the scheduler places the pod on a node
 * that has the room instead of letting the kubelet evict it half-way through a restore.
 */
export function resourceRequirements(r: Resources, scratchGi: number): k8s.types.input.core.v1.ResourceRequirements {
    return {
        requests: { cpu: r.cpuRequest, memory: r.memoryRequest, "ephemeral-storage": `${scratchGi}Gi` },
        limits: { cpu: r.cpuLimit, memory: r.memoryLimit },
    };
}

/** What every kx-backup CronJob component takes. */
export interface ScheduledJobArgs {
    readonly namespace: Input<string>;
    /** CronJob name (≤ 52 characters). */
    readonly cronJobName: string;
    /** 5-field cron, evaluated in UTC. */
    readonly schedule: string;
    readonly image: Input<string>;
    readonly serviceAccountName: Input<string>;
    /** The job's env, rendered from jobs/src/settings.ts. */
    readonly env: Input<EnvVar[]>;
    readonly resources: Resources;
    /** Extra pod labels (e.g. azure.workload.identity/use). Default: none. */
    readonly extraPodLabels?: Record<string, string>;
    /** Facts for the policy pack (see ANNOTATIONS). Default: none. */
    readonly annotations?: Record<string, string>;
}

export interface CronJobSpecInput {
    readonly schedule: string;
    readonly podLabels: Record<string, string>;
    readonly serviceAccountName: Input<string>;
    readonly image: Input<string>;
    readonly args: string[];
    readonly env: Input<EnvVar[]>;
    readonly resources: Resources;
    /** Extra volumes and their mounts on the main container (a PVC, a scratch data dir). */
    readonly volumes?: Volume[];
    readonly volumeMounts?: k8s.types.input.core.v1.VolumeMount[];
    /** Native sidecars (init containers with restartPolicy Always). */
    readonly sidecars?: Container[];
    /** Mount the ServiceAccount's API token (only the configuration export talks to the API). Default: false. */
    readonly apiToken?: boolean;
    /** Deadlines and the stop grace period, derived from the schedule (./timing.ts). */
    readonly timings: JobTimings;
    /** GiB the main container writes to scratch volumes beyond /tmp. Default: 0. */
    readonly scratchGi?: number;
}

/** History kept as the runbook's CronJob does (§5.3). */
export const HISTORY_LIMIT = 3;

export function cronJobSpec(i: CronJobSpecInput): k8s.types.input.batch.v1.CronJobSpec {
    return {
        schedule: i.schedule,
        timeZone: "Etc/UTC",
        concurrencyPolicy: "Forbid",
        successfulJobsHistoryLimit: HISTORY_LIMIT,
        failedJobsHistoryLimit: HISTORY_LIMIT,
        startingDeadlineSeconds: i.timings.startingDeadlineSeconds,
        jobTemplate: {
            spec: {
                // One retry: a dump restarts from scratch, and the next schedule is the real retry.
                backoffLimit: 1,
                activeDeadlineSeconds: i.timings.activeDeadlineSeconds,
                ttlSecondsAfterFinished: 7 * 24 * 3600,
                template: {
                    metadata: { labels: i.podLabels },
                    spec: {
                        restartPolicy: "Never",
                        // Time to abort uploads and clean up after SIGTERM (see TERMINATION_GRACE_SECONDS).
                        terminationGracePeriodSeconds: i.timings.terminationGracePeriodSeconds,
                        serviceAccountName: i.serviceAccountName,
                        // IRSA and workload identity webhooks project their own tokens; the API token is not needed.
                        automountServiceAccountToken: i.apiToken ?? false,
                        securityContext: podSecurityContext(),
                        initContainers: i.sidecars,
                        containers: [{
                            name: "kx-backup",
                            image: i.image,
                            imagePullPolicy: "IfNotPresent",
                            args: i.args,
                            env: i.env,
                            resources: resourceRequirements(i.resources, TMP_GI + (i.scratchGi ?? 0)),
                            securityContext: containerSecurityContext(),
                            volumeMounts: [{ name: "tmp", mountPath: "/tmp" }, ...(i.volumeMounts ?? [])],
                        }],
                        volumes: [{ name: "tmp", emptyDir: { sizeLimit: `${TMP_GI}Gi` } }, ...(i.volumes ?? [])],
                    },
                },
            },
        },
    };
}
