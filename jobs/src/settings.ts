/**
 * The job's settings: the environment variables kx-backup reads. This module is the single
 * definition of that interface. The CLI loads it with `loadSettings`, and the Pulumi stack renders
 * CronJob env with `renderEnv` from the same table, so the two cannot drift apart.
 * Pure: no I/O, no Pulumi.
 */

export class SettingError extends Error {}

interface Setting<T> {
    /** The environment variable. */
    env: string;
    /** What it means, for `--help` and the README. */
    doc: string;
    /** Secret settings never appear as literals: the stack must render them from a Secret. */
    secret?: boolean;
    /** Shown in docs; `parse(undefined)` returns it. */
    defaultText?: string;
    parse(raw: string | undefined): T;
    format(value: T): string | undefined;
}

function optionalString(env: string, doc: string): Setting<string | undefined> {
    return {
        env,
        doc,
        parse: (raw) => (raw === undefined || raw === "" ? undefined : raw),
        format: (v) => v,
    };
}

function secretString(env: string, doc: string): Setting<string | undefined> & { secret: true } {
    return { ...optionalString(env, doc), secret: true };
}

function stringWithDefault(env: string, doc: string, fallback: string): Setting<string> {
    return {
        env,
        doc,
        defaultText: fallback,
        parse: (raw) => (raw === undefined || raw === "" ? fallback : raw),
        format: (v) => v,
    };
}

function integer(env: string, doc: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) {
    const setting: Setting<number> = {
        env,
        doc,
        defaultText: String(fallback),
        parse(raw) {
            if (raw === undefined || raw === "") {
                return fallback;
            }
            if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
                throw new SettingError(
                    `${env}="${raw}" is not allowed: expected a whole number from ${min}` +
                        (max === Number.MAX_SAFE_INTEGER ? " up" : ` to ${max}`),
                );
            }
            return Number(raw);
        },
        format: (v) => String(v),
    };
    return setting;
}

function boolean(env: string, doc: string, fallback: boolean): Setting<boolean> {
    return {
        env,
        doc,
        defaultText: String(fallback),
        parse(raw) {
            if (raw === undefined || raw === "") {
                return fallback;
            }
            const v = raw.trim().toLowerCase();
            if (["1", "true", "yes", "on"].includes(v)) {
                return true;
            }
            if (["0", "false", "no", "off"].includes(v)) {
                return false;
            }
            throw new SettingError(`${env}="${raw}" is not allowed: expected true or false`);
        },
        format: (v) => String(v),
    };
}

function oneOf<T extends string>(env: string, doc: string, values: readonly T[], fallback: T): Setting<T> {
    return {
        env,
        doc,
        defaultText: fallback,
        parse(raw) {
            if (raw === undefined || raw === "") {
                return fallback;
            }
            if (!(values as readonly string[]).includes(raw)) {
                throw new SettingError(`${env}="${raw}" is not allowed: expected one of ${values.join(", ")}`);
            }
            return raw as T;
        },
        format: (v) => v,
    };
}

export const DUMP_FORMATS = ["custom", "directory", "plain"] as const;
export const LOG_FORMATS = ["auto", "json", "text"] as const;
export const TRIGGERS = ["manual", "scheduled"] as const;
export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;

/** Every setting kx-backup reads, keyed by the name the code uses. */
export const SETTINGS = {
    // Source: libpq's own variables, so pg_dump, psql and the job agree on them.
    pgHost: stringWithDefault("PGHOST", "PostgreSQL host (libpq).", "localhost"),
    pgPort: integer("PGPORT", "PostgreSQL port (libpq).", 5432, 1, 65535),
    pgUser: optionalString("PGUSER", "PostgreSQL user (libpq); defaults to the OS user."),
    pgPassword: secretString("PGPASSWORD", "PostgreSQL password (libpq). Never logged."),
    pgDatabase: optionalString("PGDATABASE", "The database to back up (libpq)."),
    pgPassFile: optionalString("PGPASSFILE", "A libpq password file, instead of PGPASSWORD."),
    pgSslMode: oneOf("PGSSLMODE", "libpq SSL mode.", SSL_MODES, "prefer"),

    // Targets: any combination, at least one.
    localDir: optionalString("BACKUP_LOCAL_DIR", "Directory target (the PVC mount, /backups in the pod)."),
    s3Bucket: optionalString("BACKUP_S3_BUCKET", "S3 bucket target. Credentials and region from the AWS SDK chain (IRSA included)."),
    s3Prefix: stringWithDefault("BACKUP_S3_PREFIX", "Key prefix inside the bucket.", "krystalinex"),
    s3Endpoint: optionalString("BACKUP_S3_ENDPOINT", "Endpoint of an S3-compatible store (MinIO, s3rver)."),
    s3ForcePathStyle: boolean("BACKUP_S3_FORCE_PATH_STYLE", "Path-style S3 addressing (most S3-compatible stores).", false),
    awsRegion: optionalString("AWS_REGION", "AWS region of the bucket (AWS SDK)."),
    awsAccessKeyId: secretString("AWS_ACCESS_KEY_ID", "Static AWS key id: dev only; IRSA needs none."),
    awsSecretAccessKey: secretString("AWS_SECRET_ACCESS_KEY", "Static AWS secret key: dev only."),
    azureContainer: optionalString("BACKUP_AZURE_CONTAINER", "Azure Blob container target."),
    azurePrefix: stringWithDefault("BACKUP_AZURE_PREFIX", "Blob name prefix inside the container.", "krystalinex"),
    azureAccountUrl: optionalString(
        "BACKUP_AZURE_ACCOUNT_URL",
        "https://<account>.blob.core.windows.net, authenticated by DefaultAzureCredential (workload identity).",
    ),
    azureConnectionString: secretString(
        "AZURE_STORAGE_CONNECTION_STRING",
        "Azure Storage connection string: dev only, instead of BACKUP_AZURE_ACCOUNT_URL.",
    ),

    // Retention.
    retentionDays: integer("BACKUP_RETENTION_DAYS", "Delete complete backups older than this many days.", 30, 1),
    keepMin: integer("BACKUP_KEEP_MIN", "Always keep at least this many newest complete backups.", 3, 1),
    pruneAfterBackup: boolean("BACKUP_PRUNE", "Prune after every successful backup.", true),
    safetyRetentionDays: integer("BACKUP_SAFETY_RETENTION_DAYS", "Keep restore safety dumps (<db>/safety/) this many days; the newest is always kept.", 7, 1),

    // Dump.
    format: oneOf("BACKUP_FORMAT", "pg_dump format.", DUMP_FORMATS, "custom"),
    jobs: integer("BACKUP_JOBS", "Parallel pg_dump jobs (directory format only).", 1, 1, 64),
    compressThreads: integer(
        "BACKUP_COMPRESS_THREADS",
        "Threads compressing a custom-format dump in the job: pg_dump writes it uncompressed and the job deflates it on this many threads " +
            "into the zlib archive pg_dump would write (at most 3: they share libuv's pool of 4 with file I/O). 0: pg_dump compresses, on one core.",
        2,
        0,
        3,
    ),
    restoreJobs: integer("BACKUP_RESTORE_JOBS", "Parallel pg_restore jobs, and connections counting rows after the load, for verify and restore.", 2, 1, 64),
    pgBinDir: optionalString("BACKUP_PG_BIN_DIR", "Directory holding pg_dump; default: picked by the server's major version."),
    trigger: oneOf("BACKUP_TRIGGER", "Why backups are taken: scheduled (the CronJobs set it) or manual; recorded in the manifest.", TRIGGERS, "manual"),
    signingKey: secretString(
        "BACKUP_SIGNING_KEY",
        "HMAC-SHA256 key signing every manifest; with it set, verify and restore refuse unsigned or mis-signed backups.",
    ),
    // 20: one smallest S3 part and one smallest Azure block in flight, with their write buffers (uploadBudget.ts).
    memoryBudgetMiB: integer("BACKUP_MEMORY_BUDGET_MIB", "Upload buffers shared by all targets (MiB): S3 parts and Azure blocks in flight.", 32, 20, 4096),

    // Verify: the scratch server restores go to (in the pod: the sidecar on localhost).
    verifyPgHost: optionalString("VERIFY_PGHOST", "Scratch PostgreSQL for verify; unset: a throwaway local cluster."),
    verifyPgPort: integer("VERIFY_PGPORT", "Port of the verify server.", 5432, 1, 65535),
    verifyPgUser: stringWithDefault("VERIFY_PGUSER", "User on the verify server.", "postgres"),
    verifyPgPassword: secretString("VERIFY_PGPASSWORD", "Password on the verify server (none for the pod's sidecar)."),
    verifyChecksFile: optionalString("VERIFY_CHECKS_FILE", "JSON file of integrity checks per database: {\"db\": [{\"name\", \"sql\"}]}; replaces the shipped defaults."),
    workDir: optionalString("BACKUP_WORK_DIR", "Scratch space for verify/restore downloads and directory-format dumps; default: the OS temp dir."),

    // Configuration export (archive --kubernetes-namespace).
    k8sApiUrl: optionalString("BACKUP_K8S_API_URL", "Kubernetes API for exporting ConfigMaps and Secrets; default: the in-cluster service."),
    k8sTokenFile: stringWithDefault("BACKUP_K8S_TOKEN_FILE", "ServiceAccount token for that API.", "/var/run/secrets/kubernetes.io/serviceaccount/token"),
    k8sCaFile: stringWithDefault("BACKUP_K8S_CA_FILE", "CA bundle for that API.", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),

    // Operation.
    logFormat: oneOf("BACKUP_LOG_FORMAT", "auto: text on a terminal, JSON lines otherwise.", LOG_FORMATS, "auto"),
    ntfyUrl: secretString("BACKUP_NTFY_URL", "ntfy topic URL for notifications."),
    ntfyToken: secretString("BACKUP_NTFY_TOKEN", "ntfy access token (Bearer)."),
    webhookUrl: secretString("BACKUP_WEBHOOK_URL", "Generic webhook: receives a JSON POST per notification."),
    notifyOnSuccess: boolean("BACKUP_NOTIFY_ON_SUCCESS", "Also notify when work succeeds (failures always notify).", false),
    pushgatewayUrl: optionalString("BACKUP_PUSHGATEWAY_URL", "Prometheus Pushgateway base URL for per-database metrics."),

    // Objectives and the anomaly guard (status, backup).
    rpoHours: integer("BACKUP_RPO_HOURS", "Recovery point objective: the newest full backup must be younger (status).", 24, 1, 8760),
    rtoMinutes: integer("BACKUP_RTO_MINUTES", "Recovery time objective for one database: verify's measured restore time must stay below (status).", 30, 1, 10080),
    verifyMaxAgeDays: integer("BACKUP_VERIFY_MAX_AGE_DAYS", "The newest verified backup must be younger than this (status).", 7, 1, 3650),
    anomalySizeDrop: integer("BACKUP_ANOMALY_SIZE_DROP", "Flag a backup this many percent smaller than the previous full one.", 50, 1, 100),
    anomalyRowsDrop: integer("BACKUP_ANOMALY_ROWS_DROP", "Flag a table that lost this many percent of its rows since the previous full backup.", 50, 1, 100),
    anomalyMinRows: integer("BACKUP_ANOMALY_MIN_ROWS", "Row drops are checked only for tables with at least this many rows before.", 1000, 0),
} as const;

export type SettingName = keyof typeof SETTINGS;
export type Settings = { [K in SettingName]: ReturnType<(typeof SETTINGS)[K]["parse"]> };
export type SecretSettingName = {
    [K in SettingName]: (typeof SETTINGS)[K] extends { secret: true } ? K : never;
}[SettingName];
export type PlainSettingName = Exclude<SettingName, SecretSettingName>;

export type LoadResult = { ok: true; settings: Settings } | { ok: false; errors: string[] };

/**
 * Reads settings from an environment (and flag overrides, which win). Collects every problem
 * instead of stopping at the first, so an operator fixes a CronJob in one go.
 */
export function loadSettings(env: Record<string, string | undefined>, overrides: Partial<Settings> = {}): LoadResult {
    const errors: string[] = [];
    const values: Partial<Record<SettingName, unknown>> = {};
    for (const [name, setting] of Object.entries(SETTINGS) as [SettingName, Setting<unknown>][]) {
        try {
            values[name] = setting.parse(env[setting.env]);
        } catch (e) {
            errors.push((e as Error).message);
        }
        if (overrides[name] !== undefined) {
            values[name] = overrides[name];
        }
    }
    const s = values as Settings;
    if (errors.length === 0) {
        errors.push(...crossCheck(s));
    }
    return errors.length === 0 ? { ok: true, settings: s } : { ok: false, errors };
}

/**
 * What notifying needs, read leniently: used when the settings as a whole are invalid, so a
 * misconfigured CronJob still tells someone instead of failing in silence. A value that does not
 * parse is left out.
 */
export function notificationSettings(env: Record<string, string | undefined>): Settings {
    const names: SettingName[] = ["ntfyUrl", "ntfyToken", "webhookUrl", "pushgatewayUrl", "pgDatabase"];
    const out: Partial<Record<SettingName, unknown>> = { notifyOnSuccess: false };
    for (const name of names) {
        try {
            const v = (SETTINGS[name] as Setting<unknown>).parse(env[SETTINGS[name].env]);
            if (typeof v !== "string" || name === "pgDatabase" || /^https?:\/\/\S+$/.test(v) || name === "ntfyToken") {
                out[name] = v;
            }
        } catch {
            // Left out.
        }
    }
    return out as Settings;
}

/**
 * `="value"` for a message about a plain setting, unless the value looks like it carries a secret
 * (a SAS token, credentials in a URL): a mistake must not put one into logs and notifications.
 */
function shown(value: string): string {
    return /[?#@]/.test(value) ? "" : `="${value}"`;
}

/** Every secret setting's raw value in an environment: what messages must never show, even when the settings do not load. */
export function rawSecretValues(env: Record<string, string | undefined>): string[] {
    return (Object.values(SETTINGS) as Setting<unknown>[])
        .filter((d) => d.secret)
        .map((d) => env[d.env])
        .filter((v): v is string => typeof v === "string" && v.length > 0);
}

function crossCheck(s: Settings): string[] {
    const errors: string[] = [];
    if (!s.localDir && !s.s3Bucket && !s.azureContainer) {
        errors.push(
            "no backup target: set at least one of BACKUP_LOCAL_DIR, BACKUP_S3_BUCKET, BACKUP_AZURE_CONTAINER",
        );
    }
    if (s.azureContainer && !s.azureAccountUrl && !s.azureConnectionString) {
        errors.push(
            "BACKUP_AZURE_CONTAINER is set but Azure has no credentials: set BACKUP_AZURE_ACCOUNT_URL " +
                "(workload identity) or AZURE_STORAGE_CONNECTION_STRING",
        );
    }
    if (s.azureAccountUrl && !/^https?:\/\/[^/\s?#@]+\/?$/.test(s.azureAccountUrl)) {
        errors.push(`BACKUP_AZURE_ACCOUNT_URL${shown(s.azureAccountUrl)} is not allowed: expected https://<account>.blob.core.windows.net` +
            (/[?#@]/.test(s.azureAccountUrl) ? " alone (a SAS token or credentials in a URL are secrets: the job signs in with workload identity, or AZURE_STORAGE_CONNECTION_STRING)" : ""));
    }
    if (s.s3Endpoint && !/^https?:\/\/\S+$/.test(s.s3Endpoint)) {
        errors.push(`BACKUP_S3_ENDPOINT${shown(s.s3Endpoint)} is not allowed: expected an http(s) URL`);
    } else if (s.s3Endpoint && /^https?:\/\/[^/\s]*@/.test(s.s3Endpoint)) {
        errors.push("BACKUP_S3_ENDPOINT holds credentials: give the endpoint alone; keys come from the AWS SDK chain (IRSA) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (secrets)");
    }
    if (Boolean(s.awsAccessKeyId) !== Boolean(s.awsSecretAccessKey)) {
        errors.push("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither");
    }
    for (const [env, url] of [["BACKUP_PUSHGATEWAY_URL", s.pushgatewayUrl], ["BACKUP_NTFY_URL", s.ntfyUrl], ["BACKUP_WEBHOOK_URL", s.webhookUrl]] as const) {
        if (url && !/^https?:\/\/\S+$/.test(url)) {
            // The value itself may hold a token: name the variable only.
            errors.push(`${env} is not an http(s) URL`);
        }
    }
    if (s.jobs > 1 && s.format !== "directory") {
        errors.push(`BACKUP_JOBS=${s.jobs} needs BACKUP_FORMAT=directory: only the directory format dumps in parallel`);
    }
    return errors;
}

/** A Kubernetes container env entry, as the stack renders it. */
export type EnvVar =
    | { name: string; value: string }
    | { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } };

export interface SecretRef {
    name: string;
    key: string;
}

/**
 * Renders settings as container env. Plain settings become literals; secret settings can only be
 * given as references to a Kubernetes Secret, so a password can never be rendered into a CronJob.
 */
export function renderEnv(
    plain: Partial<Pick<Settings, PlainSettingName>>,
    secrets: Partial<Record<SecretSettingName, SecretRef>> = {},
): EnvVar[] {
    const env: EnvVar[] = [];
    for (const [name, setting] of Object.entries(SETTINGS) as [SettingName, Setting<unknown>][]) {
        const ref = (secrets as Record<string, SecretRef | undefined>)[name];
        const value = (plain as Record<string, unknown>)[name];
        if (setting.secret && value !== undefined) {
            throw new SettingError(`${setting.env} is secret: render it from a Secret, never as a literal`);
        }
        if (ref !== undefined) {
            env.push({ name: setting.env, valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } });
            continue;
        }
        if (value !== undefined) {
            const text = setting.format(value);
            if (text !== undefined) {
                env.push({ name: setting.env, value: text });
            }
        }
    }
    return env;
}

/** The settings table as documentation rows: variable, default, secret, meaning. */
export function describeSettings(): { env: string; defaultText: string; secret: boolean; doc: string }[] {
    return (Object.values(SETTINGS) as Setting<unknown>[]).map((s) => ({
        env: s.env,
        defaultText: s.defaultText ?? "",
        secret: Boolean(s.secret),
        doc: s.doc,
    }));
}

/** Values that must never be printed: every secret setting that is set. */
export function secretValues(s: Settings): string[] {
    return (Object.keys(SETTINGS) as SettingName[])
        .filter((k) => (SETTINGS[k] as Setting<unknown>).secret)
        .map((k) => s[k])
        .filter((v): v is string => typeof v === "string" && v.length > 0);
}
