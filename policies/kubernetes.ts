/**
 * Kubernetes: every Job and CronJob of the stack (labelled or not) is hardened and bounded, no
 * secret is a literal, images are pinned to an exact version or digest, and every workload's pods
 * are under a NetworkPolicy that denies ingress and names the ports of its egress.
 */
import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { known, Props, resourcePolicy, T, UNKNOWN, WORKLOADS } from "./common";

export function podSpecOf(type: string, p: Props): Props | undefined {
    switch (type) {
        case T.cronJob:
            return p.spec?.jobTemplate?.spec?.template?.spec;
        case "kubernetes:core/v1:Pod":
            return p.spec;
        default:
            return p.spec?.template?.spec;
    }
}

export function podLabelsOf(type: string, p: Props): Record<string, string> {
    switch (type) {
        case T.cronJob:
            return p.spec?.jobTemplate?.spec?.template?.metadata?.labels ?? {};
        case "kubernetes:core/v1:Pod":
            return p.metadata?.labels ?? {};
        default:
            return p.spec?.template?.metadata?.labels ?? {};
    }
}

export function containersOf(spec: Props | undefined): Props[] {
    return [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])];
}

const SECCOMP_CONFINED = ["RuntimeDefault", "Localhost"];

/** What a pod spec lacks of the restricted Pod Security Standard, and of bounded resources. */
export function podHardeningProblems(pod: Props): string[] {
    const problems: string[] = [];
    const psc = pod.securityContext ?? {};
    if (psc.runAsNonRoot !== true) {
        problems.push("the pod must run as non-root (securityContext.runAsNonRoot: true)");
    }
    if (psc.runAsUser === 0) {
        problems.push("the pod runs as user 0 (root)");
    }
    const podSeccomp = SECCOMP_CONFINED.includes(psc.seccompProfile?.type);
    for (const c of containersOf(pod)) {
        const sc = c.securityContext ?? {};
        if (!c.resources?.limits?.memory || !c.resources?.limits?.cpu) {
            problems.push(`container ${c.name} needs cpu and memory limits`);
        }
        const missing = [
            sc.allowPrivilegeEscalation !== false && "allowPrivilegeEscalation: false",
            sc.readOnlyRootFilesystem !== true && "readOnlyRootFilesystem: true",
            !(sc.capabilities?.drop ?? []).includes("ALL") && "capabilities.drop: [ALL]",
            sc.privileged === true && "privileged: false",
            sc.runAsUser === 0 && "runAsUser other than 0",
            sc.runAsNonRoot === false && "runAsNonRoot not false",
            !podSeccomp && !SECCOMP_CONFINED.includes(sc.seccompProfile?.type) && "seccompProfile RuntimeDefault (on the pod or the container)",
        ].filter(Boolean);
        if (missing.length > 0) {
            problems.push(`container ${c.name} needs a restricted security context: ${missing.join(", ")}`);
        }
    }
    return problems;
}

export const k8sCronJobHardening: ResourceValidationPolicy = {
    name: "kx-k8s-cronjob-hardening",
    description: "Every CronJob and Job: never overlapping, bounded history and run time, resource limits, a restricted security context (non-root, no user 0, seccomp, no privilege).",
    validateResource: (args, reportViolation) => {
        if (args.type !== T.cronJob && args.type !== T.job) {
            return;
        }
        const p = args.props;
        if (args.type === T.cronJob) {
            const spec = p.spec ?? {};
            if (spec.concurrencyPolicy !== "Forbid") {
                reportViolation(`concurrencyPolicy must be Forbid, is ${JSON.stringify(spec.concurrencyPolicy)}`);
            }
            if (!(spec.successfulJobsHistoryLimit >= 1) || !(spec.failedJobsHistoryLimit >= 1)) {
                reportViolation("successfulJobsHistoryLimit and failedJobsHistoryLimit must be set");
            }
        }
        const jobSpec = args.type === T.cronJob ? p.spec?.jobTemplate?.spec : p.spec;
        if (!(jobSpec?.activeDeadlineSeconds > 0)) {
            reportViolation("the Job needs activeDeadlineSeconds: a hung run would hold its schedule forever");
        }
        for (const problem of podHardeningProblems(podSpecOf(args.type, p) ?? {})) {
            reportViolation(problem);
        }
    },
};

export const SECRET_NAME = /(PASSWORD|TOKEN|SECRET|KEY|CONNECTION_STRING)/i;

/** A policy over every container (init containers included) of every workload in the stack. */
function containerPolicy(name: string, description: string, check: (c: Props) => string[]): ResourceValidationPolicy {
    return {
        name,
        description,
        validateResource: (args, reportViolation) => {
            if (!WORKLOADS.has(args.type)) {
                return;
            }
            for (const c of containersOf(podSpecOf(args.type, args.props))) {
                for (const problem of check(c)) {
                    reportViolation(`container ${c.name}: ${problem}`);
                }
            }
        },
    };
}

export const k8sNoLiteralSecrets = containerPolicy(
    "kx-k8s-no-literal-secrets",
    "Env vars whose names look secret come from a Secret (secretKeyRef), never a literal.",
    (c) => ((c.env ?? []) as Props[]).filter((e) => SECRET_NAME.test(e.name) && e.value !== undefined).map((e) => `env ${e.name} is a literal; use valueFrom.secretKeyRef`),
);

/** An exact version: at least major.minor, e.g. 1.2.3, 15.14-alpine3.22, v0.1.0-3f2a9c1b7d0e. */
const EXACT_VERSION = /^v?\d+\.\d+(\.\d+)*([-+_.][0-9A-Za-z][0-9A-Za-z._-]*)?$/;

/** What is wrong with an image reference: pinned means a digest or an exact version tag. */
export function imageProblem(image: unknown): string | undefined {
    if (typeof image !== "string") {
        return undefined; // Unknown at preview (a digest still to be built): nothing to judge yet.
    }
    if (/@sha256:[a-f0-9]{64}$/.test(image)) {
        return undefined;
    }
    const lastSegment = image.slice(image.lastIndexOf("/") + 1);
    const tag = lastSegment.includes(":") ? lastSegment.slice(lastSegment.indexOf(":") + 1) : undefined;
    if (tag === undefined) {
        return `image ${image} is untagged: pin it by digest or an exact version tag`;
    }
    if (tag === "latest") {
        return `image ${image} uses latest: pin it by digest or an exact version tag`;
    }
    if (!EXACT_VERSION.test(tag)) {
        return `image ${image} uses the moving tag ${tag}: pin it by digest or an exact version (major.minor at least, e.g. 15.14-alpine3.22)`;
    }
    return undefined;
}

export const k8sImagesPinned = containerPolicy(
    "kx-k8s-images-pinned",
    "Images are pinned by digest or an exact version tag, never latest, untagged or a moving major tag such as postgres:15-alpine.",
    (c) => [imageProblem(c.image)].filter((p): p is string => p !== undefined),
);

export const k8sNetworkPolicy = resourcePolicy(
    "kx-k8s-network-policy",
    "NetworkPolicies of the stack deny ingress and allow egress only on named ports.",
    T.networkPolicy,
    (p, report) => {
        const types: string[] = p.spec?.policyTypes ?? [];
        if (!types.includes("Ingress") || (p.spec?.ingress ?? []).length > 0) {
            report("the policy must deny all ingress (policyTypes with Ingress, no ingress rules): backup pods serve nothing");
        }
        if (!types.includes("Egress")) {
            report("the policy must restrict egress (policyTypes with Egress)");
        }
        (p.spec?.egress ?? []).forEach((rule: Props, i: number) => {
            if (!Array.isArray(rule.ports) || rule.ports.length === 0 || rule.ports.some((port: Props) => port.port === undefined)) {
                report(`egress rule ${i} allows every port: name the pods' ports (after Service translation)`);
            }
        });
    },
);

/** Whether a NetworkPolicy's podSelector selects pods with these labels (matchLabels; expressions are not understood, so not matched). */
function selects(policy: PolicyResource, podLabels: Record<string, string>): boolean {
    const selector = known(() => policy.props.spec?.podSelector);
    if (selector === UNKNOWN || selector === undefined || (selector.matchExpressions ?? []).length > 0) {
        return false;
    }
    return Object.entries(selector.matchLabels ?? {}).every(([k, v]) => podLabels[k] === v);
}

export const stackNetworkPolicyCoverage: StackValidationPolicy = {
    name: "kx-stack-network-policy",
    description: "Every workload's pods are selected by a NetworkPolicy of their namespace that restricts egress.",
    validateStack: (args, reportViolation) => {
        const policies = args.resources.filter((r) => r.type === T.networkPolicy);
        for (const w of args.resources.filter((r) => WORKLOADS.has(r.type))) {
            const ns = known(() => w.props.metadata?.namespace);
            const labels = known(() => podLabelsOf(w.type, w.props));
            if (ns === UNKNOWN || labels === UNKNOWN) {
                continue;
            }
            const covered = policies.some((p) => {
                const types = known(() => p.props.spec?.policyTypes as string[] | undefined);
                return known(() => p.props.metadata?.namespace) === ns && types !== UNKNOWN && (types ?? []).includes("Egress") && selects(p, labels);
            });
            if (!covered) {
                reportViolation(`${w.name}: no NetworkPolicy in ${ns} selects its pods: they may reach anything`, w.urn);
            }
        }
    },
};
