/**
 * Stopping cleanly. Kubernetes stops a Job with SIGTERM (deadline, node drain, `kubectl delete`)
 * and SIGKILLs it after terminationGracePeriodSeconds. On SIGTERM/SIGINT the job:
 *   1. aborts `shutdownSignal`, so every upload and wait that listens stops at once;
 *   2. stops every child it started (pg_dump, pg_restore, psql, tar, a throwaway PostgreSQL),
 *      each in its own process group so helpers they started (pg_dump -j workers) stop too;
 *   3. lets the failing command unwind through its own error paths (abort uploads, remove
 *      partial files) and, as a backstop, runs every cleanup still registered;
 *   4. logs one failure line, notifies, and exits 143 (128 + SIGTERM).
 */
import { ChildProcess, spawn, SpawnOptions } from "child_process";

export class ShutdownError extends Error {
    readonly exitCode = 143;
    constructor(readonly signalName: string) {
        super(`stopped by ${signalName}`);
    }
}

const controller = new AbortController();

/** Aborted when the process is asked to stop; its reason is a ShutdownError. */
export const shutdownSignal: AbortSignal = controller.signal;

/** Throws the ShutdownError if a stop was requested: call between steps that must not start late. */
export function throwIfStopping(): void {
    if (controller.signal.aborted) {
        throw controller.signal.reason as ShutdownError;
    }
}

type Cleanup = { name: string; run: () => Promise<void> | void };
const cleanups = new Set<Cleanup>();
const children = new Set<ChildProcess>();

/** Registers a cleanup that runs on a stop if it was not released before. Returns the release function. */
export function onStop(name: string, run: () => Promise<void> | void): () => void {
    const entry: Cleanup = { name, run };
    cleanups.add(entry);
    return () => {
        cleanups.delete(entry);
    };
}

/** Sends a signal to a child's whole process group (children spawned here lead their own). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): void {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
        return;
    }
    try {
        process.kill(-child.pid, signal);
    } catch {
        try {
            child.kill(signal);
        } catch {
            // Already gone.
        }
    }
}

/**
 * spawn() for every child process of the job: in its own process group (so a stop reaches the
 * helpers it starts), tracked so a stop can end it, and refused once a stop was requested.
 */
export function spawnManaged(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    throwIfStopping();
    const child = spawn(command, args, { ...options, detached: true });
    children.add(child);
    child.once("close", () => children.delete(child));
    child.once("error", () => children.delete(child));
    return child;
}

/** Stops every tracked child (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopChildren(graceMs = 5_000): Promise<void> {
    const running = [...children];
    for (const c of running) {
        killGroup(c, "SIGTERM");
    }
    const deadline = Date.now() + graceMs;
    while ([...children].some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
    }
    for (const c of children) {
        killGroup(c, "SIGKILL");
    }
}

/** Runs every registered cleanup once, newest first; a failing one does not stop the others. */
export async function runCleanups(): Promise<string[]> {
    const failed: string[] = [];
    for (const c of [...cleanups].reverse()) {
        cleanups.delete(c);
        try {
            await c.run();
        } catch (e) {
            failed.push(`${c.name}: ${(e as Error).message}`);
        }
    }
    return failed;
}

/** Requests a stop (what the signal handlers call); also used by tests. */
export function requestStop(signalName: string): void {
    if (!controller.signal.aborted) {
        controller.abort(new ShutdownError(signalName));
    }
}

/** Whether a stop was requested. */
export function stopping(): boolean {
    return controller.signal.aborted;
}

/** Resolves never; rejects with the ShutdownError when a stop is requested. For Promise.race. */
export function whenStopped(): Promise<never> {
    return new Promise((_, reject) => {
        if (controller.signal.aborted) {
            reject(controller.signal.reason);
            return;
        }
        controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
    });
}
