import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";

/** The repository root: the build context, so the Dockerfile can bundle jobs/ with the lockfile. */
export const BUILD_CONTEXT = path.resolve(__dirname, "..", "..");

export interface JobImageArgs {
    /** true: build jobs/Dockerfile and push; false: use `ref`. */
    readonly build: boolean;
    /** Repository to push to (building). */
    readonly repository?: string;
    /** Tag of a built image. */
    readonly tag: string;
    /** Existing image reference (not building). */
    readonly ref?: string;
    /** Target platform. Default: linux/amd64. */
    readonly platform?: string;
}

/**
 * The kx-backup image. When built, the reference handed to CronJobs is the pushed digest, so a
 * new build rolls every CronJob and a tag can never be moved under a running schedule.
 */
export class JobImage extends pulumi.ComponentResource {
    public readonly imageRef: pulumi.Output<string>;

    constructor(name: string, args: JobImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("krystalinex:backup:JobImage", name, {}, opts);
        if (args.build) {
            if (!args.repository) {
                throw new Error("JobImage: building needs a repository to push to");
            }
            const image = new docker.Image(`${name}-image`, {
                imageName: `${args.repository}:${args.tag}`,
                build: {
                    context: BUILD_CONTEXT,
                    dockerfile: path.join(BUILD_CONTEXT, "jobs", "Dockerfile"),
                    platform: args.platform ?? "linux/amd64",
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
