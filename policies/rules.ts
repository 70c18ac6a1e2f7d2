/**
 * The guardrails, by layer (as awsguard splits by service): ./s3.ts, ./iam.ts, ./azure.ts,
 * ./kubernetes.ts and ./stack.ts. Each policy is exported on its own so tests import it without
 * starting a policy server (only ./index.ts constructs the PolicyPack). Every policy applies to
 * every resource of its type in the stack, labelled or not; stack policies relate resources only
 * through real relationships, and say what they could not check instead of passing silently.
 */
import type { ReportViolation, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { azureContainerPrivate, azureHttpsOnly, azureImmutabilityRequired, azureNoPublicBlobs, azureNoSharedKey, azureTls12, azureVersioningSoftDelete } from "./azure";
import { iamOidcTrust, stackOneOidcIssuer } from "./iam";
import { k8sCronJobHardening, k8sImagesPinned, k8sNetworkPolicy, k8sNoLiteralSecrets, stackNetworkPolicyCoverage } from "./kubernetes";
import { s3DenyGovernanceBypass, s3KmsEncryption, s3LifecycleRules, s3LockWithinExpiration, s3NoDeprecatedV2, s3ObjectLockRequired, s3PublicAccessBlock, s3TlsOnly, s3Versioning } from "./s3";
import { stackEveryDatabaseCovered, stackRetentionMatches, stackScheduleMeetsRpo, stackTargetsComplete, stackUnverifiable } from "./stack";

export * from "./azure";
export * from "./common";
export * from "./iam";
export * from "./kubernetes";
export * from "./s3";
export * from "./stack";

export const resourcePolicies: ResourceValidationPolicy[] = [
    s3Versioning, s3KmsEncryption, s3PublicAccessBlock, s3TlsOnly, s3LifecycleRules, s3NoDeprecatedV2, s3ObjectLockRequired,
    iamOidcTrust,
    azureHttpsOnly, azureTls12, azureNoPublicBlobs, azureNoSharedKey, azureVersioningSoftDelete, azureContainerPrivate, azureImmutabilityRequired,
    k8sCronJobHardening, k8sNoLiteralSecrets, k8sImagesPinned, k8sNetworkPolicy,
];

export const stackPolicies: StackValidationPolicy[] = [
    stackEveryDatabaseCovered, stackRetentionMatches, stackScheduleMeetsRpo, s3LockWithinExpiration, s3DenyGovernanceBypass, stackTargetsComplete,
    stackOneOidcIssuer, stackNetworkPolicyCoverage, stackUnverifiable,
];

export type { ReportViolation };
