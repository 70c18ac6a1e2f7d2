/**
 * The stack's configuration: one schema, one validating function. `validateStackConfig` is pure
 * (tested without Pulumi); `loadStackConfig` in ../loadConfig.ts is the only place that reads
 * `pulumi.Config`. Every problem is reported at once, each naming the key, the value and what is
 * allowed, so `pulumi preview` fails before anything is created.
 */
import { readKubernetes, readImage, readMonitoring } from "./cluster";
import { checkTimings, readDatabase } from "./databases";
import { CONFIG_ARCHIVE_NAME, CRONJOB_NAME_MAX, kubeName } from "./names";
import { findPlaceholders } from "./placeholders";
import { ConfigError, DNS_LABEL, Reader } from "./reader";
import { readTargets } from "./targets";
import { ConfigBackupConfig, DatabaseConfig, RawConfig, StackConfig, VolumeConfig } from "./types";

export * from "./names";
export * from "./types";
export { defaultVerifyMaxAgeDays } from "./databases";
export { findPlaceholders } from "./placeholders";
export { ConfigError, PROJECT } from "./reader";
export { SUPPORTED_PG_MAJORS } from "../image/pins";

/** Top-level keys; the secret ones are read by loadConfig.ts and only their presence reaches here. */
const TOP_KEYS = [
    "namePrefix", "databases", "dbPasswords", "targets", "kubernetes", "image", "notifications", "ntfyUrl", "monitoring",
    "volumes", "configBackup", "signingKey", "kubeconfig", "registryPassword",
];

/** Validates raw stack config; returns the typed config or throws one ConfigError listing every problem. */
export function validateStackConfig(raw: RawConfig): StackConfig {
    const r = new Reader();
    const v = raw.values;
    for (const k of Object.keys(v)) {
        if (!TOP_KEYS.includes(k)) {
            r.fail(k, v[k], `no such key (known: ${TOP_KEYS.join(", ")})`);
        }
    }
    for (const p of findPlaceholders(v)) {
        r.fail(p.key, p.value, `a real value, not ${p.what}: this stack file is a template until its account-specific values are filled in (README, deployment checklist)`);
    }
    const namePrefix = r.string("namePrefix", v.namePrefix ?? "kx-backup", DNS_LABEL, "lowercase letters, digits and hyphens") ?? "kx-backup";
    if (!DNS_LABEL.test(raw.stack)) {
        r.fail("(stack name)", raw.stack, "a stack name of lowercase letters, digits and hyphens (it becomes part of resource names)");
    }

    const databases = readDatabases(r, raw, namePrefix);
    const minRetention = databases.length ? Math.min(...databases.map((d) => d.retentionDays)) : Infinity;
    const targets = readTargets(r, raw, namePrefix, minRetention);
    const kubernetes = readKubernetes(r, raw, targets);
    const image = readImage(r, raw);
    const monitoring = readMonitoring(r, raw, kubernetes.namespace);

    const n = r.object("notifications", v.notifications ?? {}, ["ntfy"]) ?? {};
    const ntfy = r.bool("notifications.ntfy", n.ntfy ?? false) ?? false;
    if (ntfy && !raw.hasNtfyUrl) {
        r.fail("ntfyUrl", undefined, "a secret when notifications.ntfy is true: pulumi config set --secret ntfyUrl https://ntfy.sh/<topic>");
    }

    const volumes = readVolumes(r, raw, namePrefix, databases);
    let configBackup: ConfigBackupConfig | undefined;
    if (v.configBackup !== undefined) {
        const o = r.object("configBackup", v.configBackup, ["schedule", "retentionDays"]);
        if (o) {
            const schedule = r.cron("configBackup.schedule", o.schedule ?? "15 * * * *");
            checkTimings(r, "configBackup.schedule", schedule, "archive");
            const retentionDays = o.retentionDays === undefined ? undefined : r.int("configBackup.retentionDays", o.retentionDays, 1, 36500, "days");
            if (!targets.s3 && !targets.azure) {
                r.fail("configBackup", v.configBackup, "an S3 or Azure target: the export holds Secrets, which go only to encrypted targets");
            }
            configBackup = schedule ? { schedule, retentionDays } : undefined;
        }
    }

    if (r.problems.length > 0) {
        throw new ConfigError(r.problems);
    }
    return { stack: raw.stack, namePrefix, databases, targets, kubernetes, image, notifications: { ntfy }, monitoring, volumes, configBackup };
}

function readDatabases(r: Reader, raw: RawConfig, namePrefix: string): DatabaseConfig[] {
    const databases: DatabaseConfig[] = [];
    const list = raw.values.databases;
    if (!Array.isArray(list) || list.length === 0) {
        r.fail("databases", list, "a non-empty list of databases");
        return databases;
    }
    list.forEach((d, i) => {
        const db = readDatabase(r, `databases[${i}]`, d, namePrefix);
        if (db) {
            databases.push(db);
        }
    });
    const seen = new Set<string>();
    const seenKube = new Map<string, string>();
    for (const db of databases) {
        if (seen.has(db.name)) {
            r.fail("databases", db.name, "each database name once (duplicate)");
        }
        const kn = kubeName(db.name);
        if (seenKube.has(kn) && seenKube.get(kn) !== db.name) {
            r.fail("databases", db.name, `names that stay distinct in Kubernetes (${seenKube.get(kn)} also becomes ${kn})`);
        }
        seen.add(db.name);
        seenKube.set(kn, db.name);
        if (!raw.passwordsFor.includes(db.name)) {
            r.fail(`dbPasswords.${db.name}`, undefined, `a secret: pulumi config set --secret --path 'dbPasswords.${db.name}' <password>`);
        }
    }
    return databases;
}

function readVolumes(r: Reader, raw: RawConfig, namePrefix: string, databases: readonly DatabaseConfig[]): VolumeConfig[] {
    const volumes: VolumeConfig[] = [];
    const rawVolumes = raw.values.volumes ?? [];
    if (!Array.isArray(rawVolumes)) {
        r.fail("volumes", rawVolumes, "a list of {name, pvc, schedule, retentionWeeks}");
        return volumes;
    }
    rawVolumes.forEach((item, i) => {
        const key = `volumes[${i}]`;
        const o = r.object(key, item, ["name", "pvc", "schedule", "retentionWeeks", "keepMin"]);
        if (!o) {
            return;
        }
        const name = r.string(`${key}.name`, o.name, DNS_LABEL, "lowercase letters, digits and hyphens");
        const vol = {
            name,
            pvc: r.string(`${key}.pvc`, o.pvc, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "an existing PersistentVolumeClaim name"),
            schedule: r.cron(`${key}.schedule`, o.schedule ?? "0 3 * * 0"),
            retentionWeeks: r.int(`${key}.retentionWeeks`, o.retentionWeeks ?? 4, 1, 520, "weeks of retention"),
            keepMin: r.int(`${key}.keepMin`, o.keepMin ?? 2, 1, 1000, "archives always kept"),
        };
        checkTimings(r, `${key}.schedule`, vol.schedule, "archive");
        if (name !== undefined) {
            const job = `${namePrefix}-archive-${name}`;
            if (job.length > CRONJOB_NAME_MAX) {
                r.fail(`${key}.name`, name, `a name whose CronJob name "${job}" has at most ${CRONJOB_NAME_MAX} characters`);
            }
            if (databases.some((d) => kubeName(d.name) === name) || name === CONFIG_ARCHIVE_NAME || volumes.some((x) => x.name === name)) {
                r.fail(`${key}.name`, name, "a name used by no database, other volume or the configuration export");
            }
        }
        if (Object.values(vol).every((x) => x !== undefined)) {
            volumes.push(vol as VolumeConfig);
        }
    });
    return volumes;
}
