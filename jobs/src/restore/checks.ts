/**
 * Integrity checks run on a verified copy: queries returning violating rows. A failure reports the
 * check's name and the number of rows only: never the rows, which are customer data and would
 * travel into logs, ntfy and webhooks.
 */
import { readFileSync } from "fs";
import { Client } from "pg";
import { JobError } from "../log";

export interface IntegrityCheck {
    name: string;
    /** A query returning the violating rows: no rows means the check passes. */
    sql: string;
}

/** Shipped defaults: the runbook's §6.2 step 5, and referential sanity of trades. */
export const DEFAULT_CHECKS: Record<string, IntegrityCheck[]> = {
    crypto_exchange: [
        { name: "no negative wallet balance", sql: "SELECT id, user_id, asset, balance FROM wallets WHERE balance < 0" },
        {
            name: "no trade referring to a missing order",
            sql: "SELECT t.id FROM trades t WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = t.buy_order_id) OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = t.sell_order_id)",
        },
    ],
};

export function loadChecks(file: string | undefined, database: string): IntegrityCheck[] {
    if (!file) {
        return DEFAULT_CHECKS[database] ?? [];
    }
    let parsed: unknown;
    try {
        parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
        throw new JobError(`VERIFY_CHECKS_FILE ${file} is not readable JSON: ${(e as Error).message}`, 2);
    }
    const list = (parsed as Record<string, unknown>)[database] ?? [];
    if (!Array.isArray(list) || !list.every((c) => typeof c?.name === "string" && typeof c?.sql === "string")) {
        throw new JobError(`VERIFY_CHECKS_FILE ${file}: "${database}" must be a list of {"name", "sql"}`, 2);
    }
    return list as IntegrityCheck[];
}

/** Runs the checks; returns one line per failure (name and count, or the query's error). */
export async function runIntegrityChecks(db: Client, checks: readonly IntegrityCheck[]): Promise<string[]> {
    const failed: string[] = [];
    for (const check of checks) {
        // Counted on the server: the violating rows never reach the job.
        const r = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM (${check.sql.replace(/;\s*$/, "")}) AS violations`).catch((e: Error) => {
            failed.push(`${check.name}: query failed: ${e.message}`);
            return undefined;
        });
        if (r && Number(r.rows[0].n) > 0) {
            failed.push(`${check.name}: ${r.rows[0].n} violating row(s)`);
        }
    }
    return failed;
}
