// Bundles the kx-backup CLI into one file that runs with plain `node` (no node_modules), plus the
// repo-only drill and benchmark programs (which keep using node_modules).
import { build } from "esbuild";
import { existsSync } from "fs";

const common = { bundle: true, platform: "node", target: "node20", sourcemap: false, legalComments: "none", logLevel: "warning" };

// The dump-counting worker thread runs from a string (see jobs/src/dumpstream/workersource.ts).
const worker = await build({ ...common, entryPoints: ["jobs/src/dumpstream/worker.ts"], write: false, minifySyntax: true });

await build({
    ...common,
    entryPoints: ["jobs/src/cli.ts"],
    outfile: "dist/kx-backup.js",
    // node-postgres' optional native binding is never used.
    external: ["pg-native", "esbuild"],
    // Some Azure SDK modules are ESM that read import.meta.url; in the CommonJS bundle that is
    // the bundle's own file URL.
    define: { "import.meta.url": "__kxBundleUrl", __KX_DUMPSTREAM_WORKER__: JSON.stringify(worker.outputFiles[0].text) },
    banner: { js: 'const __kxBundleUrl = require("url").pathToFileURL(__filename).href;' },
    minifySyntax: true,
});

for (const tool of ["drill", "bench"]) {
    const entry = `jobs/dev/${tool}.ts`;
    if (existsSync(entry)) {
        await build({ ...common, entryPoints: [entry], outfile: `dist/${tool}.js`, packages: "external" });
    }
}
