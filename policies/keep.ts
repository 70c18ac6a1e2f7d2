/**
 * What holds backups, or the means to read and trust them, outlives mistakes: the buckets and
 * their KMS keys, the resource group, storage account and container, and the generated manifest
 * signing key are protected, so `pulumi destroy` or a replacing change stops instead of deleting
 * them; and no bucket is force-destroyable (that deletes every object and version with it).
 * Policies see `protect` but not `retainOnDelete`; the stack tests check both.
 */
import { resourcePolicy, T } from "./common";

const KEPT = new Map<string, string>([
    [T.bucket, "bucket"],
    [T.kmsKey, "KMS key (without it no backup decrypts)"],
    [T.resourceGroup, "resource group"],
    [T.account, "storage account"],
    [T.container, "container"],
    [T.randomPassword, "generated secret (the manifest signing key: without it no signed backup restores)"],
]);

export const keepBackupStores = resourcePolicy(
    "kx-keep-backup-stores",
    "Buckets, KMS keys, the resource group, storage account, container and the generated signing key are protected, and no bucket is force-destroyable.",
    (t) => KEPT.has(t),
    (p, report, args) => {
        if (args.opts?.protect !== true) {
            report(`this ${KEPT.get(args.type)} is not protected: a pulumi destroy or a replacing change would delete it and the backups with it (protect and retainOnDelete, components/storage/keep.ts)`);
        }
        if (args.type === T.bucket && p.forceDestroy === true) {
            report("forceDestroy is true: deleting the bucket would first delete every backup and every version in it");
        }
    },
);
