/** The `kubernetes`, `image` and `monitoring` sections: where the jobs run, what they run, who watches them. */
import { ecrRegistry } from "./names";
import { CIDR, DNS_LABEL, QUANTITY, Reader } from "./reader";
import { ImageConfig, KubernetesConfig, MonitoringConfig, RawConfig } from "./types";
import { Targets } from "./targets";

/** Keys an older stack file may still carry, and what replaced them. */
const RENAMED_KUBERNETES_KEYS: Record<string, string> = {
    irsaOidcProviderArn: "replaced by kubernetes.oidcIssuer (the IAM provider ARN is derived from it and the deploying account)",
    irsaOidcIssuer: "replaced by kubernetes.oidcIssuer: one issuer, the cluster's own, for IRSA and Azure workload identity",
    azureOidcIssuer: "replaced by kubernetes.oidcIssuer: a ServiceAccount token has one issuer, so Azure must trust the cluster's own",
};

const ISSUER = /^https:\/\/[a-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~\/-]*)?$/;

export function readKubernetes(r: Reader, raw: RawConfig, targets: Targets): KubernetesConfig {
    const k = r.object(
        "kubernetes",
        raw.values.kubernetes ?? {},
        ["context", "namespace", "oidcIssuer", "databaseCidrs", "verifyScratchGi", "resources"],
        RENAMED_KUBERNETES_KEYS,
    ) ?? {};
    const context = r.string(
        "kubernetes.context",
        k.context,
        /^\S+$/,
        "the kubeconfig context of this stack's cluster (required: never the ambient current-context), e.g. kx-prod",
    ) ?? "";
    const namespace = r.string("kubernetes.namespace", k.namespace ?? "krystalinex", DNS_LABEL, "a Kubernetes namespace name (DNS label)") ?? "krystalinex";
    const oidcIssuer = k.oidcIssuer === undefined
        ? undefined
        : r.string("kubernetes.oidcIssuer", k.oidcIssuer, ISSUER, "the cluster's OIDC issuer URL (https://…, as in its tokens' iss claim)");
    if (k.oidcIssuer === undefined) {
        if (targets.s3?.access === "irsa") {
            r.fail("kubernetes.oidcIssuer", undefined, "the cluster's OIDC issuer URL: required when targets.s3.access is irsa (or set it to static-keys, dev only)");
        } else if (targets.azure?.access === "workload-identity") {
            r.fail("kubernetes.oidcIssuer", undefined, "the cluster's OIDC issuer URL: required when targets.azure.access is workload-identity (or set it to connection-string, dev only)");
        }
    }
    const cidrsRaw = k.databaseCidrs ?? [];
    const databaseCidrs: string[] = [];
    if (!Array.isArray(cidrsRaw)) {
        r.fail("kubernetes.databaseCidrs", cidrsRaw, "a list of CIDR blocks");
    } else {
        cidrsRaw.forEach((c, i) => {
            const cidr = r.string(`kubernetes.databaseCidrs[${i}]`, c, CIDR, "a CIDR block such as 10.0.0.0/16");
            if (cidr) {
                databaseCidrs.push(cidr);
            }
        });
    }
    const verifyScratchGi = r.int("kubernetes.verifyScratchGi", k.verifyScratchGi ?? 20, 1, 10000, "GiB for the verify pod's restored database and its download, each (at least the largest database's size)") ?? 20;
    const res = r.object("kubernetes.resources", k.resources ?? {}, ["cpuRequest", "memoryRequest", "cpuLimit", "memoryLimit"]) ?? {};
    const resources = {
        cpuRequest: r.string("kubernetes.resources.cpuRequest", res.cpuRequest ?? "250m", QUANTITY, "a CPU quantity such as 250m") ?? "",
        memoryRequest: r.string("kubernetes.resources.memoryRequest", res.memoryRequest ?? "256Mi", QUANTITY, "a memory quantity such as 256Mi") ?? "",
        cpuLimit: r.string("kubernetes.resources.cpuLimit", res.cpuLimit ?? "2", QUANTITY, "a CPU quantity such as 2") ?? "",
        memoryLimit: r.string("kubernetes.resources.memoryLimit", res.memoryLimit ?? "512Mi", QUANTITY, "a memory quantity such as 512Mi") ?? "",
    };
    return { context, namespace, oidcIssuer, databaseCidrs, verifyScratchGi, resources };
}

export function readImage(r: Reader, raw: RawConfig): ImageConfig {
    const im = r.object("image", raw.values.image ?? {}, ["build", "repository", "tag", "ref", "platform", "registryUsername"]) ?? {};
    const build = r.bool("image.build", im.build ?? false) ?? false;
    const image: ImageConfig = {
        build,
        repository: im.repository === undefined ? undefined : r.string("image.repository", im.repository, /^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)+$/, "a registry repository such as ghcr.io/org/kx-backup"),
        tag: r.string("image.tag", im.tag ?? "0.1.0", /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$/, "a version label for the tag (the content hash is appended)") ?? "0.1.0",
        ref: im.ref === undefined ? undefined : r.string("image.ref", im.ref, /^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)+(:[A-Za-z0-9_][A-Za-z0-9_.-]*|@sha256:[a-f0-9]{64})$/, "an image reference with a tag or digest"),
        platform: r.string("image.platform", im.platform ?? "linux/amd64", /^linux\/(amd64|arm64)$/, "linux/amd64 or linux/arm64") ?? "linux/amd64",
        registryUsername: im.registryUsername === undefined ? undefined : r.string("image.registryUsername", im.registryUsername, /^\S+$/, "the registry user name"),
    };
    if (image.tag === "latest") {
        r.fail("image.tag", "latest", "an explicit version label, never latest");
    }
    if (image.ref !== undefined && /:latest$/.test(image.ref)) {
        r.fail("image.ref", image.ref, "an explicit version tag or digest, never latest");
    }
    if (!build) {
        if (im.ref === undefined) {
            r.fail("image.ref", undefined, "required when image.build is false");
        }
        return image;
    }
    if (im.repository === undefined) {
        r.fail("image.repository", undefined, "required when image.build is true");
        return image;
    }
    const ecr = image.repository ? ecrRegistry(image.repository) : undefined;
    if (ecr) {
        // The push token comes from the stack's AWS provider, which talks to aws:region only.
        if (ecr.region !== raw.awsRegion) {
            r.fail("image.repository", image.repository, `an ECR repository in aws:region (${raw.awsRegion ?? "not set"}): the push token is requested there`);
        }
        if (image.registryUsername !== undefined) {
            r.fail("image.registryUsername", image.registryUsername, "nothing for ECR: the stack requests a push token itself");
        }
    } else if (image.repository !== undefined && (image.registryUsername === undefined || !raw.hasRegistryPassword)) {
        r.fail(
            image.registryUsername === undefined ? "image.registryUsername" : "registryPassword",
            undefined,
            "push credentials for a registry other than ECR: image.registryUsername and the secret registryPassword (pulumi config set --secret registryPassword …)",
        );
    }
    return image;
}

const URL = /^https?:\/\/[A-Za-z0-9.-]+(:\d+)?(\/\S*)?$/;

export function readMonitoring(r: Reader, raw: RawConfig, namespace: string): MonitoringConfig {
    const m = r.object("monitoring", raw.values.monitoring ?? {}, [
        "pushgatewayUrl", "pushgatewayPodPort", "prometheusRule", "ruleLabels", "dashboard", "dashboardNamespace", "dashboardLabels",
    ]) ?? {};
    const pushgatewayUrl = m.pushgatewayUrl === undefined ? undefined : r.string("monitoring.pushgatewayUrl", m.pushgatewayUrl, URL, "the Pushgateway's http(s) URL, e.g. http://prometheus-pushgateway.monitoring.svc:9091");
    let pushgatewayPodPort: number | undefined;
    if (m.pushgatewayUrl !== undefined) {
        pushgatewayPodPort = r.port(
            "monitoring.pushgatewayPodPort",
            m.pushgatewayPodPort,
            "the port the Pushgateway pod listens on (its Service's targetPort, usually 9091); NetworkPolicy matches it, not the Service port",
        );
    } else if (m.pushgatewayPodPort !== undefined) {
        r.fail("monitoring.pushgatewayPodPort", m.pushgatewayPodPort, "only together with monitoring.pushgatewayUrl");
    }
    const prometheusRule = r.bool("monitoring.prometheusRule", m.prometheusRule ?? false) ?? false;
    const dashboard = r.bool("monitoring.dashboard", m.dashboard ?? false) ?? false;
    for (const [key, on] of [["prometheusRule", prometheusRule], ["dashboard", dashboard]] as const) {
        if (on && m.pushgatewayUrl === undefined) {
            r.fail(`monitoring.${key}`, true, "true only with monitoring.pushgatewayUrl: without it no job pushes the metrics it watches");
        }
    }
    return {
        pushgatewayUrl,
        pushgatewayPodPort,
        prometheusRule,
        ruleLabels: r.labels("monitoring.ruleLabels", m.ruleLabels ?? {}) ?? {},
        dashboard,
        dashboardNamespace: r.string("monitoring.dashboardNamespace", m.dashboardNamespace ?? namespace, DNS_LABEL, "the namespace the Grafana dashboard sidecar watches") ?? namespace,
        dashboardLabels: r.labels("monitoring.dashboardLabels", m.dashboardLabels ?? { grafana_dashboard: "1" }) ?? {},
    };
}
