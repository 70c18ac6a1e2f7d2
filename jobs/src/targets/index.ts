import type { Settings } from "../settings";
import { UploadBudget } from "../uploadBudget";
import type { AzureTarget as AzureTargetType } from "./azure";
import { LocalTarget } from "./local";
import type { S3Target as S3TargetType } from "./s3";
import { Target } from "./target";

export * from "./target";
export { LocalTarget };

/** The kinds of target, in the configured order (local, then s3, then azure). */
export const TARGET_KINDS = ["local", "s3", "azure"] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/**
 * The targets the settings name, in a fixed order (local, s3, azure). Creates clients only: no
 * I/O. The cloud SDKs are loaded only for the targets in use: each costs tens of MiB of memory.
 */
export function targetsFrom(s: Settings): Target[] {
    const targets: Target[] = [];
    // S3 and Azure buffer whole parts: they share one memory budget (see uploadBudget.ts).
    const budget = new UploadBudget(s.memoryBudgetMiB * 1024 * 1024);
    if (s.localDir) {
        targets.push(new LocalTarget(s.localDir));
    }
    if (s.s3Bucket) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { S3Target } = require("./s3") as { S3Target: typeof S3TargetType };
        targets.push(new S3Target({
            bucket: s.s3Bucket,
            prefix: s.s3Prefix,
            region: s.awsRegion,
            endpoint: s.s3Endpoint,
            forcePathStyle: s.s3ForcePathStyle,
            credentials: s.awsAccessKeyId && s.awsSecretAccessKey
                ? { accessKeyId: s.awsAccessKeyId, secretAccessKey: s.awsSecretAccessKey }
                : undefined,
            budget,
        }));
    }
    if (s.azureContainer) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { AzureTarget } = require("./azure") as { AzureTarget: typeof AzureTargetType };
        targets.push(new AzureTarget({
            container: s.azureContainer,
            prefix: s.azurePrefix,
            accountUrl: s.azureAccountUrl,
            connectionString: s.azureConnectionString,
            budget,
        }));
    }
    return targets;
}
