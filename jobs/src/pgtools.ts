/**
 * Which pg_dump to run. pg_dump must be at least the server's major version; the image carries
 * several client majors and this picks the matching one. The choice is a pure function.
 */
import { execFileSync } from "child_process";
import { existsSync, readdirSync } from "fs";
import * as path from "path";
import { JobError } from "./log";

export interface ClientTools {
    dir: string;
    major: number;
    version: string;
}

export function parseClientVersion(text: string): { major: number; version: string } | undefined {
    const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(text);
    if (!m) {
        return undefined;
    }
    return { major: Number(m[1]), version: m[2] === undefined ? m[1] : `${m[1]}.${m[2]}` };
}

/** Exact major first, else the lowest newer major; none: a message saying which tools to use. */
export function chooseTools(available: readonly ClientTools[], serverMajor: number, serverVersion: string): ClientTools {
    const exact = available.find((t) => t.major === serverMajor);
    if (exact) {
        return exact;
    }
    const newer = available.filter((t) => t.major > serverMajor).sort((a, b) => a.major - b.major);
    if (newer.length > 0) {
        return newer[0];
    }
    const best = [...available].sort((a, b) => b.major - a.major)[0];
    if (!best) {
        throw new JobError(`no pg_dump found: install PostgreSQL ${serverMajor} client tools or set BACKUP_PG_BIN_DIR`);
    }
    throw new JobError(
        `pg_dump ${best.version} cannot dump server ${serverVersion}: use an image with PostgreSQL ${serverMajor} client tools ` +
            "(or set BACKUP_PG_BIN_DIR to their bin directory)",
    );
}

/** Debian (/usr/lib/postgresql/N/bin), Alpine (/usr/libexec/postgresqlN) and PATH. */
export function discoverTools(override?: string): ClientTools[] {
    const dirs: string[] = [];
    if (override) {
        dirs.push(override);
    } else {
        for (const root of ["/usr/lib/postgresql", "/usr/libexec"]) {
            if (!existsSync(root)) {
                continue;
            }
            for (const name of readdirSync(root)) {
                if (root === "/usr/lib/postgresql" && /^\d+$/.test(name)) {
                    dirs.push(path.join(root, name, "bin"));
                } else if (root === "/usr/libexec" && /^postgresql\d+$/.test(name)) {
                    dirs.push(path.join(root, name));
                }
            }
        }
        dirs.push(...(process.env.PATH ?? "").split(":").filter(Boolean));
    }
    const tools: ClientTools[] = [];
    const seen = new Set<number>();
    for (const dir of dirs) {
        const bin = path.join(dir, "pg_dump");
        if (!existsSync(bin)) {
            continue;
        }
        try {
            const v = parseClientVersion(execFileSync(bin, ["--version"]).toString());
            if (v && !seen.has(v.major)) {
                seen.add(v.major);
                tools.push({ dir, ...v });
            }
        } catch {
            // Not runnable: skip.
        }
    }
    return tools;
}
