/**
 * Running PostgreSQL's client programs for restore and verify: each in its own process group
 * through the shutdown module (so a stop ends it), with an environment built from nothing but the
 * one server it talks to (see libpqEnv), and failures reported as the program's own last line.
 */
import { ChildProcess } from "child_process";
import * as path from "path";
import { Readable } from "stream";
import { libpqEnv } from "../db";
import { nameDecoder } from "../dumpstream/encoding";
import { failureLine, JobError } from "../log";
import { ClientTools } from "../pgtools";
import { Settings } from "../settings";
import { spawnManaged } from "../shutdown";

export interface ToolRun {
    child: ChildProcess;
    /** The program's output when `stdout: "pipe"`. */
    stdout: Readable | null;
    /** Resolves when the program exits 0; rejects with a JobError saying `what` failed and why. */
    exited: Promise<void>;
}

/** Starts `program` from the client tools' directory (or from PATH: `tar`), talking to `server` (or to none). */
export function startTool(tools: ClientTools | "PATH", program: string, args: readonly string[], server: Settings | undefined, what: string, stdout: "pipe" | "ignore" = "ignore"): ToolRun {
    const child = spawnManaged(tools === "PATH" ? program : path.join(tools.dir, program), args, { env: libpqEnv(server), stdio: ["ignore", stdout, "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-16_384);
    });
    const exited = new Promise<void>((resolve, reject) => {
        child.once("error", (e) => reject(new JobError(`${what}: cannot run ${program}: ${e.message}`)));
        child.once("close", (code, signal) => {
            if (code === 0) {
                resolve();
            } else {
                // GNU tar ends with a summary line; the cause is the line before it.
                const line = failureLine(stderr.replace(/^.*Exiting with failure status due to previous errors.*$/gm, "")).replace(new RegExp(`^${program}:\\s*(error:\\s*)?`, "i"), "");
                reject(new JobError(`${what} failed: ${line || (signal ? `${program} was stopped (${signal})` : `${program} exited ${code}`)}`));
            }
        });
    });
    exited.catch(() => undefined);
    return { child, stdout: child.stdout, exited };
}

/** Runs a program to completion and returns what it printed (small outputs: lists, schemas). */
export async function toolText(tools: ClientTools, program: string, args: readonly string[], server: Settings | undefined, what: string): Promise<string> {
    const run = startTool(tools, program, args, server, what, "pipe");
    const chunks: Buffer[] = [];
    run.stdout!.on("data", (d: Buffer) => chunks.push(d));
    await run.exited;
    return decodeScript(Buffer.concat(chunks));
}

/**
 * SQL that pg_dump, pg_restore or pg_dumpall printed, decoded with the client encoding it declares
 * (`SET client_encoding = 'LATIN1';` near its top, written in the database's encoding), not as
 * UTF-8: a LATIN1 database's sequence `café_id_seq` must stay a name the server can find. Pure.
 */
export function decodeScript(buf: Buffer): string {
    const head = buf.subarray(0, 64 * 1024).toString("latin1");
    const declared = /^SET client_encoding = '([^']+)';$/m.exec(head)?.[1];
    return nameDecoder(declared)(buf);
}
