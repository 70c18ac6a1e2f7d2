/** Azure Blob: HTTPS/TLS 1.2 only, no anonymous or shared-key access, versioned, soft-deleted, immutable. */
import { resourcePolicy, T } from "./common";

export const azureHttpsOnly = resourcePolicy("kx-azure-https-only", "Storage accounts accept HTTPS only.", T.account, (p, report) => {
    if (p.enableHttpsTrafficOnly !== true) {
        report("enableHttpsTrafficOnly must be true");
    }
});

export const azureTls12 = resourcePolicy("kx-azure-tls12", "Storage accounts require TLS 1.2 or newer.", T.account, (p, report) => {
    if (!["TLS1_2", "TLS1_3"].includes(p.minimumTlsVersion)) {
        report(`minimumTlsVersion must be TLS1_2 or newer, is ${JSON.stringify(p.minimumTlsVersion)}`);
    }
});

export const azureNoPublicBlobs = resourcePolicy("kx-azure-no-public-blobs", "No anonymous blob access on the account.", T.account, (p, report) => {
    if (p.allowBlobPublicAccess !== false) {
        report("allowBlobPublicAccess must be false");
    }
});

// Azure allows shared keys unless told otherwise: absent is as bad as true.
export const azureNoSharedKey = resourcePolicy("kx-azure-no-shared-key", "No shared-key (account key, SAS) access: only Entra ID identities, scoped by RBAC.", T.account, (p, report) => {
    if (p.allowSharedKeyAccess !== false) {
        report(`allowSharedKeyAccess must be false (is ${JSON.stringify(p.allowSharedKeyAccess)}; Azure's default is true): an account key opens every blob to whoever holds it`);
    }
});

export const azureVersioningSoftDelete = resourcePolicy("kx-azure-versioning-soft-delete", "Blob versioning and soft delete for blobs and containers.", T.blobService, (p, report) => {
    if (p.isVersioningEnabled !== true) {
        report("isVersioningEnabled must be true");
    }
    if (p.deleteRetentionPolicy?.enabled !== true) {
        report("blob soft delete (deleteRetentionPolicy) must be enabled");
    }
    if (p.containerDeleteRetentionPolicy?.enabled !== true) {
        report("container soft delete (containerDeleteRetentionPolicy) must be enabled");
    }
});

export const azureContainerPrivate = resourcePolicy("kx-azure-container-private", "Containers are private.", T.container, (p, report) => {
    if ((p.publicAccess ?? "None") !== "None") {
        report(`publicAccess must be None, is ${JSON.stringify(p.publicAccess)}`);
    }
});

interface ImmutabilityConfig {
    /** Require the account's policy to be Locked (prod). */
    requireLocked?: boolean;
}

/**
 * Version-level immutability is only real with a policy: enabled on the account with a retention
 * period and a state other than Disabled (Locked when the pack config requires it), and enabled
 * on each container.
 */
export const azureImmutabilityRequired = resourcePolicy(
    "kx-azure-immutability",
    "Backups are immutable (WORM) for a period: the account has a version-level immutability policy (Locked where required) and each container has immutability enabled.",
    (t) => t === T.account || t === T.container,
    (p, report, args) => {
        const iswv = p.immutableStorageWithVersioning;
        if (iswv?.enabled !== true) {
            report("version-level immutability is not enabled (set targets.azure.immutabilityDays)");
            return;
        }
        if (args.type === T.container) {
            return; // A container: enabled is all it carries; the account holds the policy.
        }
        const policy = iswv.immutabilityPolicy;
        if (!(policy?.immutabilityPeriodSinceCreationInDays > 0) || policy?.state === "Disabled") {
            report("immutability is enabled without a retention policy: nothing is held (set targets.azure.immutabilityDays)");
        } else if (args.getConfig<ImmutabilityConfig>().requireLocked && policy.state !== "Locked") {
            report(`the immutability policy is ${policy.state ?? "Unlocked"}: anyone with rights on the account can shorten or remove it (set targets.azure.immutabilityState: Locked)`);
        }
    },
    { configSchema: { properties: { requireLocked: { type: "boolean" } } } },
);
