import { BackupSystem } from "./components/backupSystem";
import { loadStackConfig } from "./components/loadConfig";

const { config, secrets } = loadStackConfig();

const system = new BackupSystem("kx", {
    config,
    dbPasswords: secrets.dbPasswords,
    ntfyUrl: secrets.ntfyUrl,
    signingKey: secrets.signingKey,
    kubeconfig: secrets.kubeconfig,
    registryPassword: secrets.registryPassword,
});

export const imageRef = system.imageRef;
export const bucketName = system.bucketName;
export const replicaBucketName = system.replicaBucketName;
export const storageAccountName = system.storageAccountName;
export const containerName = system.containerName;
export const pvcName = system.pvcName;
export const backupCronJobs = system.backupCronJobs;
export const verifyCronJobs = system.verifyCronJobs;
export const archiveCronJobs = system.archiveCronJobs;
