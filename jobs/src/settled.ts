/** Waiting for work started side by side, so that none of it outlives a failure. */

/**
 * Awaits every promise, then returns their values or throws the first failure (in argument
 * order): unlike Promise.all, nothing started (a pg_restore, a count scan) is still running
 * when this returns or throws.
 */
export async function settled<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> | T[K] }): Promise<T> {
    const results = await Promise.allSettled(promises);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
        throw failed.reason;
    }
    return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
