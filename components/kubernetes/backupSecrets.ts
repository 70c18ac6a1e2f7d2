import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { SecretRef } from "../../jobs/src/settings";
import { labels } from "./workload";

export interface BackupSecretsArgs {
    readonly namespace: pulumi.Input<string>;
    readonly namePrefix: string;
    /** Database passwords by database name (a Pulumi secret). */
    readonly dbPasswords: pulumi.Input<Record<string, string>>;
    readonly databases: readonly { readonly name: string; readonly kubeName: string }[];
    /** ntfy topic URL. Default: no notification Secret. */
    readonly ntfyUrl?: pulumi.Input<string>;
    /** Static AWS keys (dev only). */
    readonly aws?: { readonly accessKeyId: pulumi.Input<string>; readonly secretAccessKey: pulumi.Input<string> };
    /** Azure connection string (dev only). */
    readonly azureConnectionString?: pulumi.Input<string>;
}

/**
 * The Secrets the jobs read through secretKeyRef: a password Secret per database (so one job
 * can read only its own), one for notifications, and the dev-only cloud credentials.
 */
export class BackupSecrets extends pulumi.ComponentResource {
    /** secretKeyRef of each database's password, by database name. */
    public readonly passwordRefs: Record<string, SecretRef> = {};
    public readonly ntfyUrlRef?: SecretRef;
    public readonly awsRefs?: { accessKeyId: SecretRef; secretAccessKey: SecretRef };
    public readonly azureConnectionStringRef?: SecretRef;

    constructor(name: string, args: BackupSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:BackupSecrets", name, {}, opts);
        const secret = (suffix: string, data: Record<string, pulumi.Input<string>>): string => {
            const secretName = `${args.namePrefix}-${suffix}`;
            new k8s.core.v1.Secret(`${name}-${suffix}`, {
                metadata: { name: secretName, namespace: args.namespace, labels: labels("backup") },
                type: "Opaque",
                stringData: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, pulumi.secret(v)])),
            }, { parent: this });
            return secretName;
        };

        const passwords = pulumi.output(args.dbPasswords);
        for (const db of args.databases) {
            const secretName = secret(`db-${db.kubeName}`, {
                password: passwords.apply((p) => {
                    const value = p[db.name];
                    if (value === undefined) {
                        throw new Error(`no password for database ${db.name}: pulumi config set --secret --path 'dbPasswords.${db.name}' <password>`);
                    }
                    return value;
                }),
            });
            this.passwordRefs[db.name] = { name: secretName, key: "password" };
        }
        if (args.ntfyUrl !== undefined) {
            this.ntfyUrlRef = { name: secret("notify", { "ntfy-url": args.ntfyUrl }), key: "ntfy-url" };
        }
        if (args.aws) {
            const secretName = secret("aws", { "access-key-id": args.aws.accessKeyId, "secret-access-key": args.aws.secretAccessKey });
            this.awsRefs = {
                accessKeyId: { name: secretName, key: "access-key-id" },
                secretAccessKey: { name: secretName, key: "secret-access-key" },
            };
        }
        if (args.azureConnectionString !== undefined) {
            this.azureConnectionStringRef = {
                name: secret("azure", { "connection-string": args.azureConnectionString }),
                key: "connection-string",
            };
        }
        this.registerOutputs({});
    }
}
