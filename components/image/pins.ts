/**
 * What the job image and the verify sidecar are built from (jobs/image-pins.json), typed. One list:
 * config validation accepts a PostgreSQL major only when the image carries its client tools, the
 * verify sidecar runs the server image pinned for that major, and the image build gets the same
 * pins as build args (the Dockerfile's ARG defaults mirror them; a test keeps them equal).
 */
import pins from "../../jobs/image-pins.json";

export interface PostgresPin {
    readonly major: number;
    /** apk package with its exact version, e.g. postgresql15-client=15.14-r0. */
    readonly client: string;
    /** Server image for the verify sidecar, exact version. */
    readonly server: string;
}

export const IMAGE_PINS: {
    readonly buildImage: string;
    readonly runtimeImage: string;
    readonly packages: readonly string[];
    readonly postgres: readonly PostgresPin[];
} = pins;

/** PostgreSQL majors the job image carries client tools for (and the sidecar can serve). */
export const SUPPORTED_PG_MAJORS: readonly number[] = IMAGE_PINS.postgres.map((p) => p.major);

/** The pinned scratch-server image for a major; throws for a major the image does not carry. */
export function scratchPostgresImage(major: number): string {
    const pin = IMAGE_PINS.postgres.find((p) => p.major === major);
    if (!pin) {
        throw new Error(`PostgreSQL ${major} is not in jobs/image-pins.json (supported: ${SUPPORTED_PG_MAJORS.join(", ")})`);
    }
    return pin.server;
}

/** Build args for jobs/Dockerfile: the same pins, so a stack build never drifts from this list. */
export function dockerBuildArgs(): Record<string, string> {
    return {
        BUILD_IMAGE: IMAGE_PINS.buildImage,
        RUNTIME_IMAGE: IMAGE_PINS.runtimeImage,
        APK_PACKAGES: [...IMAGE_PINS.postgres.map((p) => p.client), ...IMAGE_PINS.packages].join(" "),
    };
}
