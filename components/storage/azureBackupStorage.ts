import * as authorization from "@pulumi/azure-native/authorization";
import * as managedidentity from "@pulumi/azure-native/managedidentity";
import * as resources from "@pulumi/azure-native/resources";
import * as storage from "@pulumi/azure-native/storage";
import * as pulumi from "@pulumi/pulumi";
import type { IdentityKey, JobIdentity } from "../identities";
import { blobFoldersCondition } from "./azurePolicies";
import { KEEP } from "./keep";
import { azureManagementRules, RetentionInput } from "./lifecycle";

/** Built-in role "Storage Blob Data Contributor": read, write and delete blobs, nothing else. */
export const STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";

export interface AzureBackupStorageArgs {
    /** Resource group to create the account in (created by this component). */
    readonly resourceGroupName: string;
    readonly location: string;
    /** Storage account name: 3–24 lowercase letters and digits (see storageAccountName()). */
    readonly accountName: string;
    /** Private container the job writes to. */
    readonly containerName: string;
    /** Blob prefix the job writes under. */
    readonly prefix: string;
    /** One management rule per folder with a retention, deleting at it. */
    readonly folders: readonly RetentionInput[];
    /** Days an old version survives. Default: 7. */
    readonly noncurrentVersionDays?: number;
    /** Soft delete for blobs and containers, in days. Default: 7. */
    readonly softDeleteDays?: number;
    /**
     * Version-level immutability (WORM): days, and the policy state. Azure creates a policy
     * Unlocked; Locked (only ever lengthened, never removed) is a later, irreversible update.
     */
    readonly immutability?: { readonly days: number; readonly state: "Unlocked" | "Locked" };
    /**
     * `workload-identity`: per identity, a user-assigned identity federated with its
     * ServiceAccount, with Storage Blob Data Contributor on the container limited (by a role
     * condition) to its own folders; shared keys are disabled.
     * `connection-string`: dev only, the account key in a connection string (full access).
     */
    readonly access: "workload-identity" | "connection-string";
    /** Who may use which folders (components/identities.ts). */
    readonly identities: readonly JobIdentity[];
    /** Workload identity: the cluster's OIDC issuer (the same one IRSA trusts) and the ServiceAccounts' namespace. */
    readonly workloadIdentity?: { readonly oidcIssuer: string; readonly namespace: string };
    readonly tags?: Record<string, string>;
}

/** Azure Blob storage for backups: hardened StorageV2 account, versioned private container, retention. */
export class AzureBackupStorage extends pulumi.ComponentResource {
    public readonly accountName: pulumi.Output<string>;
    public readonly containerName: pulumi.Output<string>;
    public readonly accountUrl: pulumi.Output<string>;
    /** Workload identity client id per identity, for its ServiceAccount's annotation. */
    public readonly clientIds: Partial<Record<IdentityKey, pulumi.Output<string>>> = {};
    /** Connection string (connection-string access); a Pulumi secret. */
    public readonly connectionString?: pulumi.Output<string>;

    constructor(name: string, args: AzureBackupStorageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:AzureBackupStorage", name, {}, opts);
        const noncurrentDays = args.noncurrentVersionDays ?? 7;
        const softDeleteDays = args.softDeleteDays ?? 7;
        const tags = { ...args.tags, "part-of": "krystalinex-backup" };
        const parent = { parent: this };

        const group = new resources.ResourceGroup(`${name}-rg`, {
            resourceGroupName: args.resourceGroupName,
            location: args.location,
            tags,
        }, { ...parent, ...KEEP });

        const account = new storage.StorageAccount(`${name}-account`, {
            accountName: args.accountName,
            resourceGroupName: group.name,
            location: args.location,
            kind: storage.Kind.StorageV2,
            // Geo-redundant: the runbook's region-failure row needs the data in a second region.
            sku: { name: storage.SkuName.Standard_GRS },
            enableHttpsTrafficOnly: true,
            minimumTlsVersion: storage.MinimumTlsVersion.TLS1_2,
            allowBlobPublicAccess: false,
            // With workload identity nothing needs the account key: turn it off.
            allowSharedKeyAccess: args.access === "connection-string",
            defaultToOAuthAuthentication: args.access === "workload-identity",
            encryption: {
                keySource: storage.KeySource.Microsoft_Storage,
                requireInfrastructureEncryption: true,
                services: { blob: { enabled: true, keyType: storage.KeyType.Account } },
            },
            immutableStorageWithVersioning: args.immutability === undefined ? undefined : {
                enabled: true,
                immutabilityPolicy: {
                    immutabilityPeriodSinceCreationInDays: args.immutability.days,
                    state: args.immutability.state,
                    allowProtectedAppendWrites: false,
                },
            },
            tags,
        }, { ...parent, ...KEEP });

        const blobService = new storage.BlobServiceProperties(`${name}-blob-service`, {
            accountName: account.name,
            resourceGroupName: group.name,
            blobServicesName: "default",
            isVersioningEnabled: true,
            deleteRetentionPolicy: { enabled: true, days: softDeleteDays },
            containerDeleteRetentionPolicy: { enabled: true, days: softDeleteDays },
        }, parent);

        const container = new storage.BlobContainer(`${name}-container`, {
            accountName: account.name,
            resourceGroupName: group.name,
            containerName: args.containerName,
            publicAccess: storage.PublicAccess.None,
            immutableStorageWithVersioning: args.immutability === undefined ? undefined : { enabled: true },
        }, { parent: this, dependsOn: [blobService], ...KEEP });

        new storage.ManagementPolicy(`${name}-lifecycle`, {
            accountName: account.name,
            resourceGroupName: group.name,
            managementPolicyName: "default",
            policy: { rules: azureManagementRules(args.containerName, args.prefix, args.folders, noncurrentDays) },
        }, { parent: this, dependsOn: [blobService] });

        if (args.access === "workload-identity") {
            if (!args.workloadIdentity) {
                throw new Error("AzureBackupStorage: access workload-identity needs args.workloadIdentity (the cluster's OIDC issuer)");
            }
            const wi = args.workloadIdentity;
            // The built-in role's id in this subscription, read off the account's id: no provider call.
            const roleDefinitionId = account.id.apply(
                (id) => `/subscriptions/${id.split("/")[2]}/providers/Microsoft.Authorization/roleDefinitions/${STORAGE_BLOB_DATA_CONTRIBUTOR}`,
            );
            let previous: pulumi.Resource | undefined;
            for (const identity of args.identities) {
                const id = `${name}-${identity.key}`;
                const managed = new managedidentity.UserAssignedIdentity(`${id}-identity`, {
                    resourceGroupName: group.name,
                    location: args.location,
                    tags,
                }, identity.key === "jobs" ? { parent: this, aliases: [{ name: `${name}-identity` }] } : parent);
                // Azure refuses concurrent writes of federated credentials (409
                // ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity): each waits for the one before.
                previous = new managedidentity.FederatedIdentityCredential(`${id}-federation`, {
                    resourceGroupName: group.name,
                    resourceName: managed.name,
                    issuer: wi.oidcIssuer,
                    subject: `system:serviceaccount:${wi.namespace}:${identity.serviceAccount}`,
                    audiences: ["api://AzureADTokenExchange"],
                }, { parent: this, dependsOn: previous ? [previous] : [], aliases: [{ name: `${name}-federation-${identity.serviceAccount}` }] });
                new authorization.RoleAssignment(`${id}-blob-contributor`, {
                    principalId: managed.principalId,
                    principalType: authorization.PrincipalType.ServicePrincipal,
                    roleDefinitionId,
                    scope: container.id,
                    // Only its own folders: the database jobs never read the configuration export's Secrets.
                    condition: blobFoldersCondition(args.prefix, identity.folders),
                    conditionVersion: "2.0",
                    description: `kx-backup ${identity.serviceAccount}: its own folders under ${args.prefix}/`,
                }, identity.key === "jobs" ? { parent: this, aliases: [{ name: `${name}-blob-contributor` }] } : parent);
                this.clientIds[identity.key] = managed.clientId;
            }
        } else {
            const keys = storage.listStorageAccountKeysOutput({ accountName: account.name, resourceGroupName: group.name }, parent);
            this.connectionString = pulumi.secret(
                pulumi.interpolate`DefaultEndpointsProtocol=https;AccountName=${account.name};AccountKey=${keys.keys[0].value};EndpointSuffix=core.windows.net`,
            );
        }

        this.accountName = account.name;
        this.containerName = container.name;
        this.accountUrl = account.primaryEndpoints.blob.apply((u) => u.replace(/\/$/, ""));
        this.registerOutputs({
            accountName: this.accountName,
            containerName: this.containerName,
            accountUrl: this.accountUrl,
            clientIds: this.clientIds,
        });
    }
}
