/** The README is the interface's documentation: it must name every setting and config key. */
import { readFileSync } from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { describeSettings } from "../jobs/src/settings";
import { ROOT } from "./helpers/pulumiMocks";

const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");

describe("README", () => {
    it.each(describeSettings().map((d) => d.env))("documents %s", (env) => {
        expect(readme).toContain(`\`${env}\``);
    });

    it.each(["namePrefix", "databases[]", "dbPasswords.<name>", "targets.pvc", "targets.s3", "targets.azure", "kubernetes.namespace", "image.build", "image.ref", "notifications.ntfy", "ntfyUrl", "volumes[]", "configBackup"])(
        "documents the config key %s",
        (key) => {
            expect(readme).toContain(`| \`${key}\``);
        },
    );

    it("gives the two commands: the drill and the tests", () => {
        expect(readme).toMatch(/npm install\nnpm run drill .*\nnpm test /);
        const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
        expect(pkg.scripts.drill).toBeDefined();
        expect(pkg.scripts.test).toBe("vitest run");
        expect(readFileSync(path.join(ROOT, ".ci", "run"), "utf8")).toContain("npm test");
    });
});
