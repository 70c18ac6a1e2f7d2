/**
 * What status tests judge: full backups of `ce` at a fixed clock, and one target's view of them
 * (status.test, status.rto.test, status.copies.test).
 */
import { promises as fs } from "fs";
import * as path from "path";
import { BackupEntry } from "../../jobs/src/catalog";
import { Manifest } from "../../jobs/src/manifest";
import { TargetView, VerifyRecord } from "../../jobs/src/status";
import { manifestFor } from "./manifests";

export const NOW = new Date("2026-06-30T12:00:00Z");
export const HOUR = 3_600_000;
export const MIN = 60_000;
export const OBJ = { rpoHours: 6, rtoMinutes: 30, verifyMaxAgeDays: 7 };

/** A full backup of `ce` taken `hoursAgo` before NOW, its manifest counting 1000 rows of public.trades. */
export function full(hoursAgo: number, o: { verified?: boolean; anomalous?: boolean; key?: string; size?: number } = {}): BackupEntry {
    const takenAt = new Date(NOW.getTime() - hoursAgo * HOUR);
    const key = o.key ?? `ce/ce-${takenAt.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}-aaaaaa.dump`;
    const manifest = manifestFor(key, "x", {
        tables: [{ schema: "public", name: "trades", rows: 1000 }],
        ...(o.anomalous ? { anomaly: { reasons: ["public.trades: 10000 → 1000 rows (-90 %)"], comparedWith: "ce/older.dump" } } : {}),
    });
    return { database: "ce", family: "dump", key, takenAt, size: o.size ?? 100, kind: "full", complete: true, verified: Boolean(o.verified), anomalous: Boolean(o.anomalous), objects: [key], manifest };
}

/** One configured target holding these entries, with their verify records by key. */
export function view(target: string, entries: BackupEntry[], verifies: [string, VerifyRecord][] = []): TargetView {
    return { target, entries, verifies: new Map(verifies) };
}

export const DAY = 24 * HOUR;

/** NOW less `days`, as a record's date. */
export const ago = (days: number): string => new Date(NOW.getTime() - days * DAY).toISOString();

/** A verified full backup taken `days` (and an hour) before NOW. */
export const fullDaysAgo = (days: number): BackupEntry => full(days * 24 + 1, { verified: true });

/** A copy's timed restore of `key`, `daysAgo` before NOW, taking `minutes` end to end (half of it pg_restore). */
export const timing = (key: string, daysAgo: number, minutes: number) => ({ key, finishedAt: ago(daysAgo), restoreDurationMs: (minutes * MIN) / 2, restoreEndToEndMs: minutes * MIN });

/** A backup on a local target with a verify record the catalog accepts (no BACKUP_SIGNING_KEY). */
export async function seedVerified(root: string, key: string, record: Record<string, unknown>, over: Partial<Manifest> = {}): Promise<string> {
    await fs.mkdir(path.join(root, "ce"), { recursive: true });
    await fs.writeFile(path.join(root, key), "dump");
    const manifest = manifestFor(key, "dump", over);
    await fs.writeFile(path.join(root, `${key}.manifest.json`), JSON.stringify(manifest));
    await fs.writeFile(path.join(root, `${key}.verify.json`), JSON.stringify({ kind: "kx-backup/verify", database: "ce", key, sha256: manifest.sha256, ok: true, ...record }));
    return key;
}
