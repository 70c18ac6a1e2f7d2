/**
 * The counting worker's code. The bundled CLI is one file, so the build (jobs/build.mjs) bundles
 * worker.ts on its own and embeds it as a string; run from the TypeScript sources (the tests),
 * it is bundled here on first use with esbuild, a development dependency.
 */
import * as path from "path";

declare const __KX_DUMPSTREAM_WORKER__: string | undefined;

let cached: string | undefined;

export function workerSource(): string {
    if (typeof __KX_DUMPSTREAM_WORKER__ === "string") {
        return __KX_DUMPSTREAM_WORKER__;
    }
    if (!cached) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const esbuild = require("esbuild") as typeof import("esbuild");
        const out = esbuild.buildSync({
            entryPoints: [path.join(__dirname, "worker.ts")],
            bundle: true,
            platform: "node",
            target: "node20",
            format: "cjs",
            write: false,
            logLevel: "warning",
        });
        cached = out.outputFiles[0].text;
    }
    return cached;
}

