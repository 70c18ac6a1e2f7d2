/**
 * IAM and federation: a role assumed through OIDC trusts one issuer and exact subjects; the whole
 * stack (IRSA roles and Azure federated credentials) trusts one issuer, the cluster's own — a
 * ServiceAccount token carries one `iss`, so a second issuer means one cloud never authenticates.
 */
import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { asList, known, Props, resourcePolicy, statementsOf, T, UNKNOWN } from "./common";

/** host/path of an issuer, as IAM condition keys and provider ARNs spell it. */
export function issuerKey(issuer: string): string {
    return issuer.replace(/^https:\/\//, "").replace(/\/+$/, "");
}

/** The issuer an IAM OIDC provider ARN names, e.g. `oidc.eks.eu-west-1.amazonaws.com/id/ABC`. */
export function issuerOfProviderArn(arn: string): string | undefined {
    return /^arn:aws[\w-]*:iam::\d{12}:oidc-provider\/(.+)$/.exec(arn)?.[1];
}

/** What is wrong with one role's trust document, for its web-identity statements. */
export function oidcTrustProblems(policy: unknown): string[] {
    const statements = statementsOf(policy);
    if (statements === undefined) {
        return ["the trust policy is not a JSON policy document"];
    }
    const problems: string[] = [];
    const issuers = new Set<string>();
    for (const s of statements) {
        const federated = asList<string>(s.Principal?.Federated);
        if (s.Effect !== "Allow" || federated.length === 0) {
            continue;
        }
        const providers = federated.map(issuerOfProviderArn);
        if (providers.some((p) => p === undefined)) {
            continue; // SAML or a web identity provider other than OIDC: not ours to judge.
        }
        const issuer = providers[0]!;
        issuers.add(issuer);
        if (providers.length > 1) {
            problems.push(`one statement trusts ${providers.length} OIDC providers: trust exactly one`);
        }
        const equals: Props = s.Condition?.StringEquals ?? {};
        const subs = asList<string>(equals[`${issuer}:sub`]);
        if (subs.length === 0) {
            problems.push(`trust in ${issuer} without StringEquals on ${issuer}:sub: any ServiceAccount of the cluster could assume the role`);
        } else if (subs.some((sub) => /[*?]/.test(sub) || !/^system:serviceaccount:[a-z0-9-]+:[a-z0-9.-]+$/.test(sub))) {
            problems.push(`${issuer}:sub must name exact ServiceAccounts (system:serviceaccount:<namespace>:<name>), got ${JSON.stringify(subs)}`);
        }
        if (equals[`${issuer}:aud`] !== "sts.amazonaws.com") {
            problems.push(`trust in ${issuer} must require ${issuer}:aud = sts.amazonaws.com`);
        }
        for (const op of Object.keys(s.Condition ?? {}).filter((k) => /Like$/.test(k))) {
            if (Object.keys(s.Condition[op]).some((k) => k.startsWith(`${issuer}:`))) {
                problems.push(`${op} on ${issuer} claims widens the trust: use StringEquals`);
            }
        }
        if (!asList(s.Action).includes("sts:AssumeRoleWithWebIdentity")) {
            problems.push(`trust in ${issuer} must allow only sts:AssumeRoleWithWebIdentity`);
        }
    }
    if (issuers.size > 1) {
        problems.push(`the role trusts ${issuers.size} OIDC issuers (${[...issuers].join(", ")}): trust the cluster's one issuer`);
    }
    return problems;
}

export const iamOidcTrust = resourcePolicy(
    "kx-iam-oidc-trust",
    "A role assumed through OIDC (IRSA) trusts one issuer, exact ServiceAccount subjects (StringEquals) and the STS audience.",
    T.role,
    (p, report) => {
        for (const problem of oidcTrustProblems(p.assumeRolePolicy)) {
            report(problem);
        }
    },
);

/** The issuers every role trust and federated credential of the stack names; unknown ones as UNKNOWN. */
function issuersOf(resources: PolicyResource[]): { issuer: string; resource: PolicyResource }[] {
    const out: { issuer: string; resource: PolicyResource }[] = [];
    for (const r of resources) {
        if (r.type === T.role) {
            const doc = known(() => r.props.assumeRolePolicy);
            for (const s of doc === UNKNOWN ? [] : statementsOf(doc) ?? []) {
                for (const arn of asList<string>(s.Principal?.Federated)) {
                    const issuer = issuerOfProviderArn(arn);
                    if (issuer) {
                        out.push({ issuer, resource: r });
                    }
                }
            }
        } else if (r.type === T.federatedCredential) {
            const issuer = known(() => r.props.issuer);
            if (typeof issuer === "string") {
                out.push({ issuer: issuerKey(issuer), resource: r });
            }
        }
    }
    return out;
}

export const stackOneOidcIssuer: StackValidationPolicy = {
    name: "kx-stack-one-oidc-issuer",
    description: "IRSA roles and Azure federated credentials all trust one OIDC issuer: the cluster's own.",
    validateStack: (args, reportViolation) => {
        const found = issuersOf(args.resources);
        const distinct = [...new Set(found.map((f) => f.issuer))];
        if (distinct.length > 1) {
            for (const f of found) {
                reportViolation(`${f.resource.name} trusts ${f.issuer}, but the stack trusts ${distinct.length} issuers (${distinct.join(", ")}): a ServiceAccount token has one iss, so only the cluster's own can work`, f.resource.urn);
            }
        }
    },
};
