/**
 * Putting a checked database in place of another: both renames in one transaction (PostgreSQL
 * allows ALTER DATABASE ... RENAME inside one), so the name always points at a whole database,
 * the original until the commit and the new one after. Renaming needs the database to be free of
 * sessions: without --terminate-connections other sessions refuse the swap (nothing changed).
 */
import { Client } from "pg";
import { quoteIdent } from "../db";
import { JobError, Logger } from "../log";

export interface SwapOptions {
    scratch: string;
    into: string;
    /** Set when `into` exists: the name the original takes. */
    old?: string;
    terminate: boolean;
}

async function otherSessions(admin: Client, name: string, terminate: boolean): Promise<number> {
    const r = terminate
        ? await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name])
        : await admin.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
    return r.rowCount ?? 0;
}

/** Swaps; returns the sessions terminated. Throws (exit 1) with nothing changed when it cannot. */
export async function swapIn(admin: Client, o: SwapOptions, log: Logger): Promise<number> {
    let terminated = 0;
    for (let attempt = 1; ; attempt++) {
        if (o.old) {
            const n = await otherSessions(admin, o.into, o.terminate);
            if (n > 0 && !o.terminate) {
                throw new JobError(`${o.into} has ${n} other session(s) at the swap: stop the writers or add --terminate-connections`);
            }
            terminated += o.terminate ? n : 0;
        }
        try {
            await admin.query("BEGIN");
            if (o.old) {
                await admin.query(`ALTER DATABASE ${quoteIdent(o.into)} RENAME TO ${quoteIdent(o.old)}`);
            }
            await admin.query(`ALTER DATABASE ${quoteIdent(o.scratch)} RENAME TO ${quoteIdent(o.into)}`);
            await admin.query("COMMIT");
            break;
        } catch (e) {
            await admin.query("ROLLBACK").catch(() => undefined);
            // A client reconnecting between the terminate and the rename: try again, a few times.
            if ((e as { code?: string }).code === "55006" && o.terminate && attempt < 5) {
                await new Promise((r) => setTimeout(r, 200 * attempt));
                continue;
            }
            throw new JobError(`cannot swap ${o.scratch} in for ${o.into}: ${(e as Error).message}`);
        }
    }
    if (terminated > 0) {
        log.info(`terminated ${terminated} session(s) on ${o.into}`, { event: "restore.terminate", sessions: terminated });
    }
    log.info(o.old ? `swapped: ${o.into} is the restored database, the original is ${o.old}` : `renamed ${o.scratch} to ${o.into}`, { event: "restore.swap", into: o.into, old: o.old });
    return terminated;
}
