import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { contentTag, contextHash } from "./contextHash";
import { dockerBuildArgs } from "./pins";

/** The repository root: the build context, so the Dockerfile can bundle jobs/ with the lockfile. */
export const BUILD_CONTEXT = path.resolve(__dirname, "..", "..");

export interface RegistryCredentials {
    readonly server: pulumi.Input<string>;
    readonly username: pulumi.Input<string>;
    /** A Pulumi secret. */
    readonly password: pulumi.Input<string>;
}

export interface JobImageArgs {
    /** true: build jobs/Dockerfile and push; false: use `ref`. */
    readonly build: boolean;
    /** Repository to push to (building). */
    readonly repository?: string;
    /** Version label of a built image; the content hash is appended to make the tag. */
    readonly tag: string;
    /** Existing image reference (not building). */
    readonly ref?: string;
    /** Target platform. Default: linux/amd64. */
    readonly platform?: string;
    /** Push credentials (building): an ECR token or the configured registry login. */
    readonly registry?: RegistryCredentials;
}

/**
 * The kx-backup image. When built, it is tagged `<tag>-<content hash>` (never re-pushed with other
 * content) and the reference handed to CronJobs is the pushed digest, so a new build rolls every
 * CronJob and a tag can never be moved under a running schedule.
 */
export class JobImage extends pulumi.ComponentResource {
    public readonly imageRef: pulumi.Output<string>;

    constructor(name: string, args: JobImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:JobImage", name, {}, opts);
        if (args.build) {
            if (!args.repository) {
                throw new Error("JobImage: building needs a repository to push to");
            }
            if (!args.registry) {
                throw new Error("JobImage: building needs registry credentials to push with");
            }
            const image = new docker.Image(`${name}-image`, {
                imageName: `${args.repository}:${contentTag(args.tag, contextHash(BUILD_CONTEXT))}`,
                build: {
                    context: BUILD_CONTEXT,
                    dockerfile: path.join(BUILD_CONTEXT, "jobs", "Dockerfile"),
                    platform: args.platform ?? "linux/amd64",
                    args: dockerBuildArgs(),
                },
                registry: {
                    server: args.registry.server,
                    username: args.registry.username,
                    password: pulumi.secret(args.registry.password),
                },
                buildOnPreview: false,
            }, { parent: this });
            this.imageRef = image.repoDigest;
        } else {
            if (!args.ref) {
                throw new Error("JobImage: without building, an image reference is required");
            }
            this.imageRef = pulumi.output(args.ref);
        }
        this.registerOutputs({ imageRef: this.imageRef });
    }
}
