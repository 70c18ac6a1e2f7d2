// Bundles the kx-backup CLI into one file that runs with plain `node` (no node_modules), plus the
// repo-only drill and benchmark programs (which keep using node_modules).
import { build } from "esbuild";
import { existsSync } from "fs";

const common = { bundle: true, platform: "node", target: "node20", sourcemap: false, legalComments: "none", logLevel: "warning" };

await build({
    ...common,
    entryPoints: ["jobs/src/cli.ts"],
    outfile: "dist/kx-backup.js",
    // node-postgres' optional native binding is never used.
    external: ["pg-native"],
    // Some Azure SDK modules are ESM that read import.meta.url; in the CommonJS bundle that is
    // the bundle's own file URL.
    define: { "import.meta.url": "__kxBundleUrl" },
    banner: { js: 'const __kxBundleUrl = require("url").pathToFileURL(__filename).href;' },
    minifySyntax: true,
});

for (const tool of ["drill", "bench"]) {
    const entry = `jobs/dev/${tool}.ts`;
    if (existsSync(entry)) {
        await build({ ...common, entryPoints: [entry], outfile: `dist/${tool}.js`, packages: "external" });
    }
}
