export * from "./azureBackupStorage";
export * from "./lifecycle";
export * from "./s3BackupBucket";
export * from "./s3Policies";
export * from "./keep";
