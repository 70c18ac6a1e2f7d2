/**
 * Restore and verify: one way to restore a database (build.ts), used by both. See restore.ts for
 * `kx-backup restore`, verify.ts for `kx-backup verify`, archive.ts for `restore-archive`.
 */
export { runRestore, retryNote } from "./restore";
export type { RestoreOptions, RestoreResult } from "./restore";
export { planRestore } from "./plan";
export type { RestorePlan } from "./plan";
export { runVerify } from "./verify";
export type { VerifyOptions, VerifyReport } from "./verify";
