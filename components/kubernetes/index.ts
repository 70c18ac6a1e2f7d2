export * from "./backupCronJob";
export * from "./backupSecrets";
export * from "./backupVolume";
export * from "./networkPolicy";
export * from "./verifyCronJob";
export * from "./workload";
export * from "./archiveCronJob";
export * from "./configReader";
