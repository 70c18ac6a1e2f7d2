/** The validated stack configuration (see ./index.ts for the validator and the README's key table). */

export type Criticality = "critical" | "high" | "medium" | "low";

export interface DatabaseConfig {
    /** PostgreSQL database name; also the backup folder and part of Kubernetes names. */
    readonly name: string;
    /** Service or host name the job connects to. */
    readonly host: string;
    /** Port the job connects to (the Service port: PGPORT). */
    readonly port: number;
    /**
     * Port the PostgreSQL server itself listens on (the Service's targetPort). NetworkPolicy is
     * matched after the Service has translated the destination, so egress is opened on this one.
     */
    readonly podPort: number;
    readonly user: string;
    /** Backup schedule (5-field cron, UTC). */
    readonly schedule: string;
    readonly retentionDays: number;
    /** Newest complete backups that prune always keeps. */
    readonly keepMin: number;
    /** Schedule of the restore test. */
    readonly verifySchedule: string;
    /** Recovery point objective: the schedule may never leave a gap longer than this. */
    readonly rpoHours: number;
    /** Recovery time objective: verify's measured restore time must stay below it. */
    readonly rtoMinutes: number;
    /** The newest verified backup must be younger than this (default: the verify period, rounded up, plus a day). */
    readonly verifyMaxAgeDays: number;
    /** Anomaly guard: a backup this many percent smaller than the previous full one is flagged. */
    readonly anomalySizeDropPercent: number;
    /** Anomaly guard: a table that lost this many percent of its rows is flagged... */
    readonly anomalyRowsDropPercent: number;
    /** ...when it had at least this many rows. */
    readonly anomalyMinRows: number;
    readonly criticality: Criticality;
    /** Server major version: picks the client tools and the verify sidecar's PostgreSQL. */
    readonly postgresMajor: number;
}

export interface S3TargetConfig {
    /** Always `aws:region`: the bucket is created by the stack's default AWS provider. */
    readonly region: string;
    /** Key prefix; database folders sit under it. */
    readonly prefix: string;
    /** Object lock (WORM) default retention; the bucket is created lock-enabled when set. */
    readonly objectLock?: { readonly mode: "GOVERNANCE" | "COMPLIANCE"; readonly days: number };
    /** Cross-region replica for the region-failure scenario. */
    readonly replicaRegion?: string;
    /** Days an overwritten or deleted version is kept before it expires. */
    readonly noncurrentVersionDays: number;
    /** How the job authenticates: an IAM role through IRSA, or (dev only) static keys in a Secret. */
    readonly access: "irsa" | "static-keys";
}

export interface AzureTargetConfig {
    readonly location: string;
    readonly resourceGroup: string;
    /** Blob name prefix; database folders sit under it. */
    readonly prefix: string;
    /** Explicit account name; derived from the stack when absent. */
    readonly accountName?: string;
    readonly containerName: string;
    /** Version-level immutability (WORM) on the account, in days, and whether its policy is locked. */
    readonly immutability?: { readonly days: number; readonly state: "Unlocked" | "Locked" };
    readonly noncurrentVersionDays: number;
    readonly softDeleteDays: number;
    /** Workload identity, or (dev only) a connection-string Secret. */
    readonly access: "workload-identity" | "connection-string";
}

export interface PvcTargetConfig {
    readonly size: string;
    /** A ReadWriteMany class: every backup, verify and archive job mounts the volume. */
    readonly storageClass: string;
}

export interface KubernetesConfig {
    /** The kubeconfig context this stack deploys to (never the ambient current-context). */
    readonly context: string;
    readonly namespace: string;
    /**
     * The cluster's own OIDC issuer (https://…): the one issuer both IRSA and the Azure federated
     * credentials trust, since a ServiceAccount token carries exactly one `iss`.
     */
    readonly oidcIssuer?: string;
    /** Hosts' CIDR blocks the backup pods may reach on the database ports. */
    readonly databaseCidrs: readonly string[];
    /**
     * GiB of the verify pod's scratch server data and of its download space, each: requested as
     * ephemeral storage, so a node needs twice this (plus 1 GiB) free to run a verify.
     */
    readonly verifyScratchGi: number;
    readonly resources: {
        readonly cpuRequest: string;
        readonly memoryRequest: string;
        readonly cpuLimit: string;
        readonly memoryLimit: string;
    };
}

export interface ImageConfig {
    /** true: build jobs/ and push; false: use `ref` as is. */
    readonly build: boolean;
    /** Repository to push to when building (e.g. 123.dkr.ecr.eu-west-1.amazonaws.com/kx-backup). */
    readonly repository?: string;
    /** Version label of a built image; the pushed tag is `<tag>-<content hash>`. */
    readonly tag: string;
    /** Image reference used when not building. */
    readonly ref?: string;
    readonly platform: string;
    /** Push credentials for a registry other than ECR: user name here, password as the `registryPassword` secret. */
    readonly registryUsername?: string;
}

export interface MonitoringConfig {
    /** Prometheus Pushgateway base URL, rendered into every job as BACKUP_PUSHGATEWAY_URL. */
    readonly pushgatewayUrl?: string;
    /** Port the Pushgateway pod listens on (NetworkPolicy matches it after Service translation). */
    readonly pushgatewayPodPort?: number;
    /** A PrometheusRule (monitoring.coreos.com/v1) with each database's alerts. */
    readonly prometheusRule: boolean;
    /** Labels the Prometheus operator's ruleSelector matches (e.g. release: kube-prometheus-stack). */
    readonly ruleLabels: Readonly<Record<string, string>>;
    /** A Grafana dashboard as a ConfigMap the dashboard sidecar picks up. */
    readonly dashboard: boolean;
    /** Namespace the sidecar watches. Default: the jobs' namespace. */
    readonly dashboardNamespace: string;
    /** The sidecar's label. Default: grafana_dashboard: "1". */
    readonly dashboardLabels: Readonly<Record<string, string>>;
}

export interface VolumeConfig {
    /** Archive name: the folder and file names of its archives. */
    readonly name: string;
    /** Existing PVC to archive (mounted read-only). */
    readonly pvc: string;
    /** Default: weekly, Sunday 03:00 UTC (the runbook's volume row). */
    readonly schedule: string;
    /** Default: 4 weeks. */
    readonly retentionWeeks: number;
    readonly keepMin: number;
}

export interface ConfigBackupConfig {
    /** How often the namespace's ConfigMaps and Secrets are exported; uploads happen only on change. */
    readonly schedule: string;
    /** Default: none (kept indefinitely, as the runbook says; only multipart clean-up for its prefix). */
    readonly retentionDays?: number;
}

export interface StackConfig {
    readonly stack: string;
    readonly namePrefix: string;
    readonly databases: readonly DatabaseConfig[];
    readonly targets: {
        readonly pvc?: PvcTargetConfig;
        readonly s3?: S3TargetConfig;
        readonly azure?: AzureTargetConfig;
    };
    readonly kubernetes: KubernetesConfig;
    readonly image: ImageConfig;
    readonly notifications: { readonly ntfy: boolean };
    readonly monitoring: MonitoringConfig;
    readonly volumes: readonly VolumeConfig[];
    readonly configBackup?: ConfigBackupConfig;
}

/** Config as read: plain values by key, and which secret keys are present (never their values). */
export interface RawConfig {
    readonly stack: string;
    readonly values: Readonly<Record<string, unknown>>;
    /** Databases that have a password under `dbPasswords`. */
    readonly passwordsFor: readonly string[];
    readonly hasNtfyUrl: boolean;
    /** `registryPassword` is set (push credentials for a registry other than ECR). */
    readonly hasRegistryPassword?: boolean;
    /** `aws:region`, which the S3 target must equal. */
    readonly awsRegion?: string;
}
