import { Settings } from "../settings";
import { AzureTarget } from "./azure";
import { LocalTarget } from "./local";
import { S3Target } from "./s3";
import { Target } from "./target";

export * from "./target";
export { AzureTarget, LocalTarget, S3Target };

export type TargetKind = "local" | "s3" | "azure";

/** The targets the settings name, in a fixed order (local, s3, azure). Creates clients only: no I/O. */
export function targetsFrom(s: Settings): Target[] {
    const targets: Target[] = [];
    if (s.localDir) {
        targets.push(new LocalTarget(s.localDir));
    }
    if (s.s3Bucket) {
        targets.push(new S3Target({
            bucket: s.s3Bucket,
            prefix: s.s3Prefix,
            region: s.awsRegion,
            endpoint: s.s3Endpoint,
            forcePathStyle: s.s3ForcePathStyle,
            credentials: s.awsAccessKeyId && s.awsSecretAccessKey
                ? { accessKeyId: s.awsAccessKeyId, secretAccessKey: s.awsSecretAccessKey }
                : undefined,
        }));
    }
    if (s.azureContainer) {
        targets.push(new AzureTarget({
            container: s.azureContainer,
            prefix: s.azurePrefix,
            accountUrl: s.azureAccountUrl,
            connectionString: s.azureConnectionString,
        }));
    }
    return targets;
}
