import { execFileSync } from "child_process";
import * as path from "path";

/** The end-to-end tests run the real bundled CLI, so build it once before any test file. */
export default function setup(): void {
    execFileSync(process.execPath, [path.join(__dirname, "..", "jobs", "build.mjs")], { cwd: path.join(__dirname, ".."), stdio: "inherit" });
}
