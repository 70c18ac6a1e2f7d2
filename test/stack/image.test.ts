/** The job image: one list of pins for the Dockerfile, the config and the sidecar; a tag derived from content. */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { afterAll, describe, expect, it } from "vitest";
import { contentTag, contextHash, IMAGE_INPUTS } from "../../components/image/contextHash";
import { dockerBuildArgs, IMAGE_PINS, scratchPostgresImage, SUPPORTED_PG_MAJORS } from "../../components/image/pins";
import { imageProblem } from "../../policies/kubernetes";
import { ROOT } from "../helpers/pulumiMocks";

const dockerfile = readFileSync(path.join(ROOT, "jobs", "Dockerfile"), "utf8");

/** The Dockerfile's ARG defaults. */
function argDefaults(): Record<string, string> {
    return Object.fromEntries([...dockerfile.matchAll(/^ARG (\w+)=(?:"([^"]*)"|(\S+))$/gm)].map((m) => [m[1], m[2] ?? m[3]]));
}

describe("image pins (jobs/image-pins.json)", () => {
    it("are what the Dockerfile builds by default, and what the stack passes as build args", () => {
        expect(argDefaults()).toEqual(dockerBuildArgs());
        expect(dockerfile).toMatch(/^FROM \$\{BUILD_IMAGE\} AS build$/m);
        expect(dockerfile).toMatch(/^FROM \$\{RUNTIME_IMAGE\} AS runtime$/m);
        expect(dockerfile).toMatch(/apk add --no-cache \$\{APK_PACKAGES\}/);
        // Nothing else is installed or pulled unpinned.
        expect(dockerfile.match(/^FROM .*/gm)!.every((l) => l.includes("${"))).toBe(true);
        expect(dockerfile.match(/apk add/g)).toHaveLength(1);
    });

    it("pin every image to an exact version and every package to an exact release", () => {
        for (const image of [IMAGE_PINS.buildImage, IMAGE_PINS.runtimeImage, ...IMAGE_PINS.postgres.map((p) => p.server)]) {
            expect(imageProblem(image), image).toBeUndefined();
        }
        for (const pkg of [...IMAGE_PINS.packages, ...IMAGE_PINS.postgres.map((p) => p.client)]) {
            expect(pkg).toMatch(/^[a-z0-9-]+=\d[\w.]*-r\d+$/);
        }
    });

    it("give each supported major its client tools and its scratch server, of that major", () => {
        expect(SUPPORTED_PG_MAJORS).toEqual([15, 16, 17]);
        for (const p of IMAGE_PINS.postgres) {
            expect(p.client).toMatch(new RegExp(`^postgresql${p.major}-client=${p.major}\\.`));
            expect(scratchPostgresImage(p.major)).toMatch(new RegExp(`/postgres:${p.major}\\.\\d+-alpine`));
        }
        expect(() => scratchPostgresImage(14)).toThrow(/PostgreSQL 14 is not in jobs\/image-pins\.json \(supported: 15, 16, 17\)/);
    });
});

describe("content-derived tag", () => {
    const dirs: string[] = [];
    afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
    const copy = () => {
        const dir = mkdtempSync(path.join(tmpdir(), "kx-image-"));
        dirs.push(dir);
        for (const input of IMAGE_INPUTS) {
            cpSync(path.join(ROOT, input), path.join(dir, input), { recursive: true });
        }
        return dir;
    };

    it("is the same for the same content and changes with any input file", () => {
        const a = copy();
        const b = copy();
        expect(contextHash(a)).toBe(contextHash(ROOT));
        expect(contextHash(b)).toBe(contextHash(a));
        writeFileSync(path.join(b, "jobs", "src", "naming.ts"), readFileSync(path.join(b, "jobs", "src", "naming.ts"), "utf8") + "\n");
        expect(contextHash(b)).not.toBe(contextHash(a));
        const c = copy();
        writeFileSync(path.join(c, "jobs", "image-pins.json"), readFileSync(path.join(c, "jobs", "image-pins.json"), "utf8").replace("15.14", "15.15"));
        expect(contextHash(c)).not.toBe(contextHash(a));
    });

    it("tags as <version>-<12 hex digits>", () => {
        expect(contentTag("0.1.0", "0123456789abcdef0123")).toBe("0.1.0-0123456789ab");
    });
});
