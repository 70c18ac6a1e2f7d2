import type * as pulumi from "@pulumi/pulumi";

/**
 * Options for what holds or guards backups (buckets, their KMS keys, the resource group, storage
 * account and container): `pulumi destroy` and any change that would replace them refuse
 * (protect), and a delete forced past that leaves the cloud resource and its data in place
 * (retainOnDelete). Removing them is a deliberate `pulumi state unprotect` (README).
 */
export const KEEP: pulumi.CustomResourceOptions = { protect: true, retainOnDelete: true };
