import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { SecretRef } from "../../jobs/src/settings";
import { passwordSecretName } from "../config/names";
import type { IdentityKey } from "../identities";
import { ANNOTATIONS } from "./annotations";
import { labels } from "./workload";

export interface BackupSecretsArgs {
    readonly namespace: pulumi.Input<string>;
    readonly namePrefix: string;
    /** Database passwords by database name (a Pulumi secret). */
    readonly dbPasswords: pulumi.Input<Record<string, string>>;
    readonly databases: readonly string[];
    /** The environment's manifest signing key (a Pulumi secret). */
    readonly signingKey: pulumi.Input<string>;
    /** ntfy topic URL. Default: no notification Secret. */
    readonly ntfyUrl?: pulumi.Input<string>;
    /** Static AWS keys per identity (dev only). */
    readonly awsKeys?: Partial<Record<IdentityKey, { readonly accessKeyId: pulumi.Input<string>; readonly secretAccessKey: pulumi.Input<string> }>>;
    /** Azure connection string (dev only). */
    readonly azureConnectionString?: pulumi.Input<string>;
}

/**
 * The Secrets the jobs read through secretKeyRef: a password Secret per database (so one job
 * can read only its own), the signing key, notifications, and the dev-only cloud credentials
 * (one AWS key per identity, so the database jobs never hold the configuration export's).
 */
export class BackupSecrets extends pulumi.ComponentResource {
    /** secretKeyRef of each database's password, by database name. */
    public readonly passwordRefs: Record<string, SecretRef> = {};
    public readonly signingKeyRef: SecretRef;
    public readonly ntfyUrlRef?: SecretRef;
    public readonly awsRefs: Partial<Record<IdentityKey, { accessKeyId: SecretRef; secretAccessKey: SecretRef }>> = {};
    public readonly azureConnectionStringRef?: SecretRef;

    constructor(name: string, args: BackupSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:BackupSecrets", name, {}, opts);
        const secret = (logical: string, secretName: string, data: Record<string, pulumi.Input<string>>, annotations?: Record<string, string>): string => {
            new k8s.core.v1.Secret(`${name}-${logical}`, {
                metadata: { name: secretName, namespace: args.namespace, labels: labels("backup"), annotations },
                type: "Opaque",
                stringData: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, pulumi.secret(v)])),
            }, { parent: this });
            return secretName;
        };
        const own = (suffix: string) => `${args.namePrefix}-${suffix}`;

        const passwords = pulumi.output(args.dbPasswords);
        for (const db of args.databases) {
            const secretName = passwordSecretName(args.namePrefix, db);
            secret(secretName.slice(args.namePrefix.length + 1), secretName, {
                password: passwords.apply((p) => {
                    const value = p[db];
                    if (value === undefined) {
                        throw new Error(`no password for database ${db}: pulumi config set --secret --path 'dbPasswords.${db}' <password>`);
                    }
                    return value;
                }),
            }, { [ANNOTATIONS.database]: db });
            this.passwordRefs[db] = { name: secretName, key: "password" };
        }
        this.signingKeyRef = { name: secret("signing", own("signing"), { "signing-key": args.signingKey }), key: "signing-key" };
        if (args.ntfyUrl !== undefined) {
            this.ntfyUrlRef = { name: secret("notify", own("notify"), { "ntfy-url": args.ntfyUrl }), key: "ntfy-url" };
        }
        for (const [key, keys] of Object.entries(args.awsKeys ?? {}) as [IdentityKey, { accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string> }][]) {
            const suffix = key === "jobs" ? "aws" : `${key}-aws`;
            const secretName = secret(suffix, own(suffix), { "access-key-id": keys.accessKeyId, "secret-access-key": keys.secretAccessKey });
            this.awsRefs[key] = {
                accessKeyId: { name: secretName, key: "access-key-id" },
                secretAccessKey: { name: secretName, key: "secret-access-key" },
            };
        }
        if (args.azureConnectionString !== undefined) {
            this.azureConnectionStringRef = {
                name: secret("azure", own("azure"), { "connection-string": args.azureConnectionString }),
                key: "connection-string",
            };
        }
        this.registerOutputs({});
    }
}
