/** Names the stack derives from config: pure, shared by validation and the components. */

/** A database name as it appears in Kubernetes names: `crypto_exchange` → `crypto-exchange`. */
export function kubeName(database: string): string {
    return database.replace(/_/g, "-");
}

/** CronJob names are limited to 52 characters (the controller appends an 11-character suffix). */
export const CRONJOB_NAME_MAX = 52;

export function cronJobName(namePrefix: string, database: string, kind: "backup" | "verify" | "archive"): string {
    return `${namePrefix}-${kind}-${kubeName(database)}`;
}

/** The Secret holding one database's password. */
export function passwordSecretName(namePrefix: string, database: string): string {
    return `${namePrefix}-db-${kubeName(database)}`;
}

/** Archive name of the namespace configuration export. */
export const CONFIG_ARCHIVE_NAME = "k8s-config";

/** ServiceAccounts: one for database and volume jobs, one (with its own cloud identity) for the configuration export. */
export function serviceAccountNames(namePrefix: string): { jobs: string; config: string } {
    return { jobs: namePrefix, config: `${namePrefix}-config` };
}

/** S3 bucket naming rules (3–63, lowercase letters, digits, hyphens; no IP form, no reserved prefixes). */
export function bucketNameProblem(name: string): string | undefined {
    if (name.length < 3 || name.length > 63) {
        return "3 to 63 characters";
    }
    if (!/^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(name)) {
        return "lowercase letters, digits and hyphens, starting and ending with a letter or digit";
    }
    if (/^xn--|^sthree-|^amzn-s3-demo-|-s3alias$|--ol-s3$|--x-s3$/.test(name)) {
        return "no reserved prefix or suffix (xn--, sthree-, -s3alias, --ol-s3, --x-s3)";
    }
    return undefined;
}

/** Pulumi appends an 8-character random suffix ("-" + 7) to auto-named buckets. */
export function bucketBaseName(namePrefix: string, stack: string): string {
    return `${namePrefix}-${stack}`;
}

/**
 * A storage account name that is valid (3–24 lowercase letters and digits), stable across runs
 * and distinct per stack: the readable part, cut to fit, plus a short hash of the full input.
 */
export function storageAccountName(namePrefix: string, stack: string): string {
    const full = `${namePrefix}-${stack}`;
    const readable = full.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 16);
    return `${readable}${fnv1a(full).slice(0, 8)}`.padEnd(3, "0");
}

function fnv1a(text: string): string {
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
        h ^= text.charCodeAt(i);
        h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h.toString(16).padStart(8, "0");
}

/** An OIDC issuer URL as IAM and token `iss` claims spell it without the scheme: host/path, no trailing slash. */
export function issuerHostPath(issuerUrl: string): string {
    return issuerUrl.replace(/^https:\/\//, "").replace(/\/+$/, "");
}

/** An ECR repository (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`): its registry id and region. */
export function ecrRegistry(repository: string): { registryId: string; region: string; server: string } | undefined {
    const m = /^((\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?)\//.exec(repository);
    return m ? { server: m[1], registryId: m[2], region: m[3] } : undefined;
}
