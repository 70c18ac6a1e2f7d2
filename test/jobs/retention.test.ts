import { describe, expect, it } from "vitest";
import { BackupEntry, groupBackups } from "../../jobs/src/catalog";
import { planPrune } from "../../jobs/src/retention";

const NOW = new Date("2026-06-30T12:00:00Z");
const DAY = 86_400_000;

/** A backup of `kong` taken `age` days before NOW. */
function entry(age: number, complete = true, verified = false): BackupEntry {
    const takenAt = new Date(NOW.getTime() - age * DAY);
    const key = `kong/kong-${takenAt.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}.dump`;
    return {
        database: "kong",
        key,
        takenAt,
        size: 1,
        complete,
        verified,
        objects: [key, ...(complete ? [`${key}.manifest.json`] : []), ...(verified ? [`${key}.verify.json`] : [])],
    };
}

type Case = [string, BackupEntry[], { retentionDays: number; keepMin: number }, number[], boolean];

// [what, entries, policy, indexes of entries deleted, stale]
const cases: Case[] = [
    ["nothing to prune", [entry(0.2), entry(1)], { retentionDays: 7, keepMin: 2 }, [], false],
    ["deletes complete backups past retention", [entry(0.2), entry(3), entry(8), entry(9)], { retentionDays: 7, keepMin: 1 }, [2, 3], false],
    ["keeps the newest keepMin even when old", [entry(0.2), entry(8), entry(9)], { retentionDays: 7, keepMin: 2 }, [2], false],
    ["keeps everything within retention regardless of count", [entry(1), entry(2), entry(3), entry(4)], { retentionDays: 7, keepMin: 1 }, [], false],
    ["removes incomplete leftovers older than a day", [entry(0.2), entry(1.5, false), entry(0.5, false)], { retentionDays: 7, keepMin: 1 }, [1], false],
    ["stale guard: newest complete past retention deletes nothing", [entry(8), entry(9), entry(10, false)], { retentionDays: 7, keepMin: 1 }, [], true],
    ["stale guard: only incomplete backups deletes nothing", [entry(3, false), entry(5, false)], { retentionDays: 7, keepMin: 1 }, [], true],
    ["never deletes the newest verified backup", [entry(0.2), entry(8, true, true), entry(9, true, true)], { retentionDays: 7, keepMin: 1 }, [2], false],
    ["an empty target is fine", [], { retentionDays: 7, keepMin: 3 }, [], false],
    ["exactly at the boundary is kept", [entry(0.1), entry(7)], { retentionDays: 7, keepMin: 1 }, [], false],
];

describe("prune plan", () => {
    it.each(cases)("%s", (_what, entries, policy, deleted, stale) => {
        const plan = planPrune(entries, policy, NOW);
        expect(plan.delete.map((a) => a.key).sort()).toEqual(deleted.map((i) => entries[i].key).sort());
        expect(Boolean(plan.stale)).toBe(stale);
        // Nothing is both kept and deleted, and nothing is forgotten.
        expect(plan.keep.length + plan.delete.length).toBe(entries.length);
    });

    it("deletes a backup's manifest before its dump, and its verify record last", () => {
        const e = entry(30, true, true);
        const plan = planPrune([entry(0.1), entry(0.2, true, true), e], { retentionDays: 7, keepMin: 1 }, NOW);
        expect(plan.delete[0].objects).toEqual([`${e.key}.manifest.json`, e.key, `${e.key}.verify.json`]);
    });

    it("says why each backup is kept or deleted", () => {
        const plan = planPrune([entry(0.2), entry(3), entry(9)], { retentionDays: 7, keepMin: 1 }, NOW);
        expect(plan.keep.map((k) => k.reason)).toEqual(["newest 1 kept", "within 7 days"]);
        expect(plan.delete.map((k) => k.reason)).toEqual(["older than 7 days"]);
    });
});

describe("catalog", () => {
    const at = new Date("2026-01-01T00:00:00Z");
    const obj = (key: string) => ({ key, size: 10, lastModified: at });

    it("pairs dumps with manifests and verify records, newest first", () => {
        const entries = groupBackups([
            obj("kong/kong-20260101-000000.dump"),
            obj("kong/kong-20260101-000000.dump.manifest.json"),
            obj("kong/kong-20260102-000000.dump"),
            obj("kong/kong-20260103-000000.dump.tar"),
            obj("kong/kong-20260103-000000.dump.tar.manifest.json"),
            obj("kong/kong-20260103-000000.dump.tar.verify.json"),
            obj("kong/notes.txt"),
        ]);
        expect(entries.map((e) => [e.key, e.complete, e.verified])).toEqual([
            ["kong/kong-20260103-000000.dump.tar", true, true],
            ["kong/kong-20260102-000000.dump", false, false],
            ["kong/kong-20260101-000000.dump", true, false],
        ]);
    });

    it("treats a local partial file as incomplete and an orphan manifest as a leftover", () => {
        const entries = groupBackups([
            obj("goalert/goalert-20260101-000000.dump.partial"),
            obj("goalert/goalert-20251231-000000.dump.manifest.json"),
        ]);
        expect(entries.map((e) => [e.key, e.complete])).toEqual([
            ["goalert/goalert-20260101-000000.dump.partial", false],
            ["goalert/goalert-20251231-000000.dump.manifest.json", false],
        ]);
    });

    it("keeps database names with underscores and dashes apart", () => {
        const entries = groupBackups([obj("crypto_exchange/crypto_exchange-20260101-000000.dump"), obj("a-b/a-b-20260101-000000.sql")]);
        expect(entries.map((e) => e.database).sort()).toEqual(["a-b", "crypto_exchange"]);
    });
});
