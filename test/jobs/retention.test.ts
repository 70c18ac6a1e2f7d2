import { describe, expect, it } from "vitest";
import { BackupEntry, describeBackups, EntryKind, groupBackups } from "../../jobs/src/catalog";
import { Manifest, signManifest } from "../../jobs/src/manifest";
import { planPrune } from "../../jobs/src/retention";

const NOW = new Date("2026-06-30T12:00:00Z");
const DAY = 86_400_000;

function stamp(at: Date): string {
    return at.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

interface Opts {
    kind?: EntryKind;
    verified?: boolean;
    anomalous?: boolean;
}

/** A backup of `kong` taken `age` days before NOW. */
function entry(age: number, o: Opts = {}): BackupEntry {
    const kind = o.kind ?? "full";
    const takenAt = new Date(NOW.getTime() - age * DAY);
    const folder = kind === "safety" ? "kong/safety/" : "kong/";
    const key = `${folder}kong-${stamp(takenAt)}-${Math.random().toString(16).slice(2, 8)}.dump`;
    const complete = kind === "full" || kind === "partial" || kind === "safety";
    return {
        database: "kong",
        key,
        takenAt,
        size: 1,
        kind,
        complete,
        verified: Boolean(o.verified),
        anomalous: Boolean(o.anomalous),
        objects: [key, ...(complete ? [`${key}.manifest.json`] : []), ...(o.verified ? [`${key}.verify.json`] : [])],
    };
}

const full = (age: number, o: Omit<Opts, "kind"> = {}) => entry(age, o);
const incomplete = (age: number) => entry(age, { kind: "incomplete" });
const foreign = (age: number) => entry(age, { kind: "foreign" });
const partial = (age: number) => entry(age, { kind: "partial" });
const safety = (age: number) => entry(age, { kind: "safety" });
const anomalous = (age: number) => entry(age, { anomalous: true });
const unreadable = (age: number) => entry(age, { kind: "unreadable" });

type Policy = { retentionDays: number; keepMin: number; safetyRetentionDays?: number };
type Case = [string, BackupEntry[], Policy, number[], boolean];

// [what, entries, policy, indexes of entries deleted, stale]
const cases: Case[] = [
    ["nothing to prune", [full(0.2), full(1)], { retentionDays: 7, keepMin: 2 }, [], false],
    ["deletes complete backups past retention", [full(0.2), full(3), full(8), full(9)], { retentionDays: 7, keepMin: 1 }, [2, 3], false],
    ["keeps the newest keepMin even when old", [full(0.2), full(8), full(9)], { retentionDays: 7, keepMin: 2 }, [2], false],
    ["keeps everything within retention regardless of count", [full(1), full(2), full(3), full(4)], { retentionDays: 7, keepMin: 1 }, [], false],
    ["removes its own unfinished uploads older than a day", [full(0.2), incomplete(1.5), incomplete(0.5)], { retentionDays: 7, keepMin: 1 }, [1], false],
    ["stale guard: newest complete past retention deletes nothing", [full(8), full(9), incomplete(10)], { retentionDays: 7, keepMin: 1 }, [], true],
    ["stale guard: only incomplete backups deletes nothing", [incomplete(3), incomplete(5)], { retentionDays: 7, keepMin: 1 }, [], true],
    ["never deletes the newest verified backup", [full(0.2), full(8, { verified: true }), full(9, { verified: true })], { retentionDays: 7, keepMin: 1 }, [2], false],
    ["an empty target is fine", [], { retentionDays: 7, keepMin: 3 }, [], false],
    ["exactly at the boundary is kept", [full(0.1), full(7)], { retentionDays: 7, keepMin: 1 }, [], false],
    // Foreign dumps: the runbook's own, however old, never deleted.
    ["never deletes a foreign dump, however old", [full(0.2), foreign(2), foreign(40), foreign(400)], { retentionDays: 7, keepMin: 1 }, [], false],
    ["foreign dumps alone are not a stale target", [foreign(40), foreign(41)], { retentionDays: 7, keepMin: 1 }, [], false],
    ["a foreign dump never counts as a good backup", [foreign(0.1), full(8), full(9)], { retentionDays: 7, keepMin: 1 }, [], true],
    // Partial backups: never keep-min, never the stale guard, deleted past retention.
    ["partial backups never count toward keepMin", [partial(0.1), partial(0.2), full(8), full(9)], { retentionDays: 7, keepMin: 1 }, [], true],
    ["keepMin counts full backups only", [partial(0.1), full(1), full(8), full(9)], { retentionDays: 7, keepMin: 2 }, [3], false],
    ["partial backups past retention are deleted", [full(0.1), partial(8), partial(2)], { retentionDays: 7, keepMin: 1 }, [1], false],
    // Safety dumps: their own retention, the newest always kept, never keep-min.
    ["safety dumps keep their own retention", [full(0.1), safety(1), safety(3), safety(9)], { retentionDays: 30, keepMin: 1, safetyRetentionDays: 2 }, [2, 3], false],
    ["the newest safety dump is kept however old", [full(0.1), safety(40)], { retentionDays: 7, keepMin: 1, safetyRetentionDays: 2 }, [], false],
    ["safety dumps never satisfy keepMin", [safety(0.1), safety(0.2), full(8), full(9)], { retentionDays: 7, keepMin: 1, safetyRetentionDays: 2 }, [], true],
    // Anomalous backups: complete, restorable, but never keep-min, never newest verified.
    ["anomalous backups never push out the last good ones", [anomalous(0.1), anomalous(0.2), full(3), full(8), full(9)], { retentionDays: 7, keepMin: 2 }, [4], false],
    ["a run of anomalous backups after the last good one past retention deletes nothing", [anomalous(0.1), anomalous(0.2), anomalous(0.3), full(8), full(9)], { retentionDays: 7, keepMin: 1 }, [], true],
    ["a run of anomalous backups alone is stale", [anomalous(0.1), anomalous(0.2)], { retentionDays: 7, keepMin: 1 }, [], true],
    ["anomalous backups past retention are deleted", [full(0.1), anomalous(9)], { retentionDays: 7, keepMin: 1 }, [1], false],
    ["an anomalous verified backup is not the newest verified", [full(0.1), anomalous(8, ), full(9, { verified: true })], { retentionDays: 7, keepMin: 1 }, [1], false],
    ["unreadable manifests are never deleted", [full(0.1), unreadable(30)], { retentionDays: 7, keepMin: 1 }, [], false],
];

describe("prune plan", () => {
    it.each(cases)("%s", (_what, entries, policy, deleted, stale) => {
        const plan = planPrune(entries, policy, NOW);
        expect(plan.delete.map((a) => a.key).sort()).toEqual(deleted.map((i) => entries[i].key).sort());
        expect(Boolean(plan.stale)).toBe(stale);
        // Nothing is both kept and deleted, and nothing is forgotten.
        expect(plan.keep.length + plan.delete.length).toBe(entries.length);
    });

    it("deletes a backup's dump first, its manifest after and its marker last", () => {
        const e = full(30, { verified: true });
        e.objects = [`${e.key}.inprogress.json`, `${e.key}.manifest.json`, e.key, `${e.key}.verify.json`, `${e.key}.globals.sql`];
        const plan = planPrune([full(0.1), full(0.2, { verified: true }), e], { retentionDays: 7, keepMin: 1 }, NOW);
        expect(plan.delete[0].objects).toEqual([e.key, `${e.key}.globals.sql`, `${e.key}.manifest.json`, `${e.key}.verify.json`, `${e.key}.inprogress.json`]);
    });

    it("says why each backup is kept or deleted, and notes foreign dumps", () => {
        const plan = planPrune([full(0.2), full(3), full(9), foreign(50)], { retentionDays: 7, keepMin: 1 }, NOW);
        expect(plan.keep.map((k) => k.reason)).toEqual(["newest 1 kept", "within 7 days", "not written by kx-backup"]);
        expect(plan.delete.map((k) => k.reason)).toEqual(["older than 7 days"]);
        expect(plan.notes).toEqual([expect.stringMatching(/was not written by kx-backup: kept \(kx-backup adopt/)]);
    });
});

describe("catalog", () => {
    const at = new Date("2026-01-01T00:00:00Z");
    const obj = (key: string) => ({ key, size: 10, lastModified: at });
    const kinds = (entries: BackupEntry[]) => entries.map((e) => [e.key, e.kind, e.complete, e.verified]);

    it("pairs dumps with manifests and verify records, newest first", () => {
        const entries = groupBackups([
            obj("kong/kong-20260101-000000-aaaaaa.dump"),
            obj("kong/kong-20260101-000000-aaaaaa.dump.manifest.json"),
            obj("kong/kong-20260103-000000-bbbbbb.dump.tar"),
            obj("kong/kong-20260103-000000-bbbbbb.dump.tar.manifest.json"),
            obj("kong/kong-20260103-000000-bbbbbb.dump.tar.verify.json"),
            obj("kong/kong-20260103-000000-bbbbbb.dump.tar.globals.sql"),
            obj("kong/notes.txt"),
        ]);
        expect(kinds(entries)).toEqual([
            ["kong/kong-20260103-000000-bbbbbb.dump.tar", "full", true, true],
            ["kong/kong-20260101-000000-aaaaaa.dump", "full", true, false],
        ]);
        expect(entries[0].objects.sort()).toEqual([
            "kong/kong-20260103-000000-bbbbbb.dump.tar",
            "kong/kong-20260103-000000-bbbbbb.dump.tar.globals.sql",
            "kong/kong-20260103-000000-bbbbbb.dump.tar.manifest.json",
            "kong/kong-20260103-000000-bbbbbb.dump.tar.verify.json",
        ]);
    });

    it("a dump without manifest or kx-backup mark is foreign; with the in-progress marker it is kx-backup's own", () => {
        const entries = groupBackups([
            obj("kong/kong-20260102-000000.dump"),
            obj("kong/kong-20260104-000000-cccccc.dump"),
            obj("kong/kong-20260104-000000-cccccc.dump.inprogress.json"),
            obj("kong/kong-20260105-000000-dddddd.dump.inprogress.json"),
        ]);
        expect(kinds(entries)).toEqual([
            ["kong/kong-20260105-000000-dddddd.dump.inprogress.json", "incomplete", false, false],
            ["kong/kong-20260104-000000-cccccc.dump", "incomplete", false, false],
            ["kong/kong-20260102-000000.dump", "foreign", false, false],
        ]);
    });

    it("a manifest makes a backup complete even with a marker left behind", () => {
        const entries = groupBackups([
            obj("kong/kong-20260104-000000-cccccc.dump"),
            obj("kong/kong-20260104-000000-cccccc.dump.manifest.json"),
            obj("kong/kong-20260104-000000-cccccc.dump.inprogress.json"),
        ]);
        expect(kinds(entries)).toEqual([["kong/kong-20260104-000000-cccccc.dump", "full", true, false]]);
        expect(entries[0].objects).toContain("kong/kong-20260104-000000-cccccc.dump.inprogress.json");
    });

    it("safety dumps are recognised by their folder", () => {
        const entries = groupBackups([obj("kong/safety/kong-20260104-000000-cccccc.dump"), obj("kong/safety/kong-20260104-000000-cccccc.dump.manifest.json")]);
        expect(kinds(entries)).toEqual([["kong/safety/kong-20260104-000000-cccccc.dump", "safety", true, false]]);
        expect(entries[0].database).toBe("kong");
    });

    it("treats a local partial file as incomplete and an orphan manifest as a leftover", () => {
        const entries = groupBackups([
            obj("goalert/goalert-20260101-000000-aaaaaa.dump.partial"),
            obj("goalert/goalert-20251231-000000-bbbbbb.dump.manifest.json"),
            obj("goalert/goalert-20251231-000000-bbbbbb.dump.globals.sql"),
        ]);
        expect(kinds(entries)).toEqual([
            ["goalert/goalert-20260101-000000-aaaaaa.dump.partial", "incomplete", false, false],
            ["goalert/goalert-20251231-000000-bbbbbb.dump.manifest.json", "orphan", false, false],
        ]);
        expect(entries[1].objects.sort()).toEqual(["goalert/goalert-20251231-000000-bbbbbb.dump.globals.sql", "goalert/goalert-20251231-000000-bbbbbb.dump.manifest.json"]);
    });

    it("keeps database names with underscores and dashes apart", () => {
        const entries = groupBackups([obj("crypto_exchange/crypto_exchange-20260101-000000.dump"), obj("a-b/a-b-20260101-000000.sql")]);
        expect(entries.map((e) => e.database).sort()).toEqual(["a-b", "crypto_exchange"]);
    });

    describe("with manifests", () => {
        const key = "kong/kong-20260101-000000-aaaaaa.dump";
        const manifest = (over: Partial<Manifest> = {}): Manifest => ({
            kind: "kx-backup/postgres", manifestVersion: 2, database: "kong", key, locations: {}, scope: "full", purpose: "scheduled",
            format: "custom", container: "pg_dump", options: { schemaOnly: false, dataOnly: false, tables: [], jobs: 1 },
            startedAt: "", finishedAt: "", durationMs: 1, size: 10, sha256: "0".repeat(64), pgDump: { version: "15" }, server: { version: "15", versionNum: 150000 },
            tables: [], counts: { method: "dump-stream" }, targets: ["local"], ...over,
        });
        const described = async (m: unknown, signingKey?: string) => {
            const entries = groupBackups([obj(key), obj(`${key}.manifest.json`)]);
            return (await describeBackups(entries, async () => (typeof m === "string" ? m : JSON.stringify(m)), { signingKey }))[0];
        };

        it("a schema-only or selected-tables backup is partial", async () => {
            expect((await described(manifest({ scope: "schema-only" }))).kind).toBe("partial");
            expect((await described(manifest({ scope: "tables" }))).kind).toBe("partial");
            expect((await described(manifest())).kind).toBe("full");
        });

        it("flags anomalous backups", async () => {
            const e = await described(manifest({ anomaly: { reasons: ["size dropped 90 %"], comparedWith: "x" } }));
            expect([e.kind, e.anomalous]).toEqual(["full", true]);
        });

        it("a manifest that is garbage, names another backup, or (with a key) is unsigned or forged is unreadable", async () => {
            expect((await described("{not json")).kind).toBe("unreadable");
            expect((await described(manifest({ key: "kong/other.dump" }))).kind).toBe("unreadable");
            expect((await described(manifest(), "k1")).problem).toMatch(/not signed/);
            expect((await described(signManifest(manifest(), "k2"), "k1")).problem).toMatch(/does not verify/);
            const forged = { ...signManifest(manifest(), "k1"), size: 11 };
            expect((await described(forged, "k1")).kind).toBe("unreadable");
            expect((await described(signManifest(manifest(), "k1"), "k1")).kind).toBe("full");
        });

        it("reads v1 manifests (written before scopes) with their scope", async () => {
            const v1 = { ...manifest(), manifestVersion: 1, tables: { "public.t": 3 }, options: { schemaOnly: true, dataOnly: false, tables: [], jobs: 1 } };
            const e = await described(v1);
            expect(e.kind).toBe("partial");
            expect(e.manifest?.tables).toEqual([{ schema: "public", name: "t", rows: 3 }]);
        });
    });
});
