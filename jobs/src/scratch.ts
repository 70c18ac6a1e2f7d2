/**
 * The job's own scratch space: private directories under BACKUP_WORK_DIR (else the OS temp dir)
 * for downloads, directory-format dumps and exports. When it fails (the directory missing, not
 * writable, full), the error says so and names the setting: a problem on this side, never
 * evidence that a backup copy is bad.
 */
import { mkdtempSync } from "fs";
import * as os from "os";
import * as path from "path";
import { JobError } from "./log";

export class ScratchSpaceError extends JobError {}

/** Makes a private (0700) scratch directory, or throws a ScratchSpaceError naming where. */
export function scratchDir(workDir: string | undefined, prefix: string): string {
    const base = workDir ?? os.tmpdir();
    try {
        return mkdtempSync(path.join(base, prefix));
    } catch (e) {
        throw new ScratchSpaceError(`cannot make scratch space in ${base}${workDir ? " (BACKUP_WORK_DIR)" : ""}: ${(e as Error).message}`);
    }
}
