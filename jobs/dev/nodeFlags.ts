/**
 * The node flags kx-backup runs with. Their one source is the job image's ENTRYPOINT
 * (jobs/Dockerfile); everything else that runs kx-backup as the image does (the benchmark, the
 * drill, `npm run kx-backup`, checked by test/jobs/nodeflags.test.ts) takes them from there.
 */
import { existsSync, readFileSync } from "fs";
import * as path from "path";

/** The flags between `node` and `kx-backup.js` in a Dockerfile's exec-form ENTRYPOINT; none without one. Pure. */
export function imageNodeFlags(dockerfile: string): string[] {
    const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
    if (!m) {
        return [];
    }
    const argv = JSON.parse(m[1]) as string[];
    const node = argv.indexOf("node");
    const script = argv.findIndex((a) => a.endsWith("kx-backup.js"));
    return node >= 0 && script > node ? argv.slice(node + 1, script) : [];
}

/** The repository's jobs/Dockerfile flags, found from `from` (dist/ or jobs/dev/) upwards. */
export function repositoryNodeFlags(from: string): string[] {
    for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
        const file = path.join(dir, "jobs", "Dockerfile");
        if (existsSync(file)) {
            return imageNodeFlags(readFileSync(file, "utf8"));
        }
        if (path.dirname(dir) === dir) {
            throw new Error(`no jobs/Dockerfile above ${from}: the node flags kx-backup runs with are its ENTRYPOINT's`);
        }
    }
}

/**
 * Refuses a run of kx-backup that did not run with the image's node flags (`ran`: what its
 * backup.start line says it ran with): its figures would not be the image's.
 */
export function checkRanAsImage(ran: readonly string[] | undefined, imageFlags: readonly string[]): void {
    const missing = imageFlags.filter((f) => !ran?.includes(f));
    if (missing.length > 0) {
        throw new Error(`kx-backup ran with node flags [${(ran ?? ["unknown"]).join(" ")}], without the image's ${missing.join(" ")}`);
    }
}
