/**
 * The guardrails, by layer (as awsguard splits by service): ./s3.ts, ./iam.ts, ./azure.ts,
 * ./kubernetes.ts and ./stack.ts, and ./keep.ts across clouds. Each policy is exported on its own so tests import it without
 * starting a policy server (only ./index.ts constructs the PolicyPack). Every policy applies to
 * every resource of its type in the stack, labelled or not; stack policies relate resources only
 * through real relationships, and say what they could not check instead of passing silently.
 */
import type { ReportViolation, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { azureContainerPrivate, azureHttpsOnly, azureImmutabilityRequired, azureNoPublicBlobs, azureNoSharedKey, azureRoleScoped, azureTls12, azureVersioningSoftDelete } from "./azure";
import { iamNoDestructiveGrants, iamOidcTrust, stackOneOidcIssuer } from "./iam";
import { keepBackupStores } from "./keep";
import { k8sCronJobHardening, k8sImagesPinned, k8sNetworkPolicy, k8sNoLiteralSecrets, stackNetworkPolicyCoverage } from "./kubernetes";
import { s3DenyGovernanceBypass, s3KmsEncryption, s3LifecycleRules, s3LockWithinExpiration, s3NoDeprecatedV2, s3ObjectLockRequired, s3PublicAccessBlock, s3TlsOnly, s3Versioning } from "./s3";
import { stackEveryDatabaseCovered, stackRetentionMatches, stackScheduleMeetsRpo, stackTargetsComplete, stackUnverifiable } from "./stack";

export * from "./azure";
export * from "./common";
export * from "./iam";
export * from "./keep";
export * from "./kubernetes";
export * from "./s3";
export * from "./stack";

export const resourcePolicies: ResourceValidationPolicy[] = [
    s3Versioning, s3KmsEncryption, s3PublicAccessBlock, s3TlsOnly, s3LifecycleRules, s3NoDeprecatedV2, s3ObjectLockRequired,
    iamOidcTrust, iamNoDestructiveGrants,
    keepBackupStores,
    azureHttpsOnly, azureTls12, azureNoPublicBlobs, azureNoSharedKey, azureVersioningSoftDelete, azureContainerPrivate, azureImmutabilityRequired, azureRoleScoped,
    k8sCronJobHardening, k8sNoLiteralSecrets, k8sImagesPinned, k8sNetworkPolicy,
];

export const stackPolicies: StackValidationPolicy[] = [
    stackEveryDatabaseCovered, stackRetentionMatches, stackScheduleMeetsRpo, s3LockWithinExpiration, s3DenyGovernanceBypass, stackTargetsComplete,
    stackOneOidcIssuer, stackNetworkPolicyCoverage, stackUnverifiable,
];

export type { ReportViolation };
