/**
 * What a delete hid, read back from the stores' listings (pure), and what undelete chooses.
 * S3 is proven end to end against RGW (rgw.test.ts). Azure's versioning and soft delete are not
 * implemented by azurite: the listing shapes below are the documented ones (List Blobs with
 * include=versions,deleted), and the Azure path is checked as far as azurite goes.
 */
import { BlobServiceClient } from "@azure/storage-blob";
import { PassThrough } from "stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AzureEmulator, startAzurite } from "../../jobs/dev/services";
import { Logger } from "../../jobs/src/log";
import { DeleteOutcome, describeDelete, HiddenObject, LocalTarget, StoredObject, Target } from "../../jobs/src/targets";
import { AzureTarget, refusedByLock } from "../../jobs/src/targets/azure";
import { AzureHiddenHandle, hiddenFromBlobItems } from "../../jobs/src/targets/azureVersions";
import { hiddenFromVersions, S3HiddenHandle, VersionEntry } from "../../jobs/src/targets/s3versions";
import { groupHidden, runUndelete } from "../../jobs/src/undelete";

const at = (s: string) => new Date(`2026-11-20T${s}Z`);
const v = (key: string, versionId: string, time: string, o: Partial<VersionEntry> = {}): VersionEntry =>
    ({ key, versionId, isDeleteMarker: false, isLatest: false, lastModified: at(time), size: 100, ...o });
const marker = (key: string, versionId: string, time: string, isLatest = false) => v(key, versionId, time, { isDeleteMarker: true, isLatest, size: 0 });

describe("S3: keys behind delete markers", () => {
    it("finds the newest data version under the markers, and every marker above it", () => {
        const hidden = hiddenFromVersions([
            v("db/a.dump", "v1", "01:00:00"),
            v("db/a.dump", "v2", "02:00:00"),
            marker("db/a.dump", "m1", "03:00:00"),
            marker("db/a.dump", "m2", "04:00:00", true),
            v("db/b.dump", "v3", "01:00:00", { isLatest: true }),
            marker("db/c.dump", "m3", "05:00:00", true),
        ]);
        expect(hidden.map((h) => [h.key, h.how, (h.handle as S3HiddenHandle).versionId, (h.handle as S3HiddenHandle).markerVersionIds, h.hiddenAt])).toEqual([
            ["db/a.dump", "delete marker", "v2", ["m2", "m1"], at("04:00:00")],
        ]);
    });

    it("a marker written in the same second as the version it hides is still above it", () => {
        const hidden = hiddenFromVersions([v("db/a.dump", "v1", "01:00:00"), marker("db/a.dump", "m1", "01:00:00", true)]);
        expect((hidden[0].handle as S3HiddenHandle).markerVersionIds).toEqual(["m1"]);
    });
});

describe("Azure: names without a current blob", () => {
    const item = (name: string, o: Record<string, unknown>, props: Record<string, unknown> = {}) =>
        ({ name, deleted: false, snapshot: "", ...o, properties: { contentLength: 10, lastModified: at("01:00:00"), ...props } }) as Parameters<typeof hiddenFromBlobItems>[0][number];

    it("versioning on: a deleted blob's newest previous version is copied back", () => {
        const hidden = hiddenFromBlobItems([
            item("db/a.dump", { versionId: "2026-11-20T01:00:00.0000000Z", isCurrentVersion: false }),
            item("db/a.dump", { versionId: "2026-11-20T02:00:00.0000000Z", isCurrentVersion: false }, { contentLength: 20 }),
            item("db/b.dump", { versionId: "2026-11-20T02:00:00.0000000Z", isCurrentVersion: true }),
        ]);
        expect(hidden.map((h) => [h.key, h.how, h.size, h.handle])).toEqual([
            ["db/a.dump", "previous version", 20, { undelete: false, versionId: "2026-11-20T02:00:00.0000000Z" } satisfies AzureHiddenHandle],
        ]);
    });

    it("versioning off, soft delete on: Undelete Blob", () => {
        const hidden = hiddenFromBlobItems([
            item("db/a.dump", { deleted: true }, { deletedOn: at("03:00:00"), remainingRetentionDays: 6 }),
            item("db/b.dump", {}),
        ]);
        expect(hidden.map((h) => [h.key, h.how, h.hiddenAt, h.handle])).toEqual([["db/a.dump", "soft-deleted", at("03:00:00"), { undelete: true, versionId: undefined }]]);
        expect(hidden[0].keptUntil!.getTime()).toBeGreaterThan(Date.now() + 5 * 86_400_000);
    });

    it("versioning on and the versions themselves soft-deleted: undelete them, then copy the newest back", () => {
        const hidden = hiddenFromBlobItems([
            item("db/a.dump", { deleted: true, versionId: "2026-11-20T01:00:00.0000000Z" }),
            item("db/a.dump", { deleted: true, versionId: "2026-11-20T02:00:00.0000000Z" }),
        ]);
        expect(hidden[0].handle).toEqual({ undelete: true, versionId: "2026-11-20T02:00:00.0000000Z" });
    });
});

describe("grouping hidden objects into backups", () => {
    const h = (key: string, size = 10): HiddenObject => ({ key, size, lastModified: at("01:00:00"), how: "delete marker", handle: key });
    const cur = (key: string): StoredObject => ({ key, size: 5, lastModified: at("01:00:00") });
    const A = "db/db-20261120-010000-aaaa.dump";
    const B = "db/db-20261120-020000-bbbb.dump";

    it("a backup is complete when its dump and manifest both remain, hidden or current; its manifest is restored last", () => {
        const groups = groupHidden(
            [h(`${A}.manifest.json`), h(A, 999), h(`${A}.globals.sql`), h(`${A}.verify.json`), h(B), h("db/not-a-backup.txt"), h(`${A}.inprogress.json`)],
            [cur(`${B}.manifest.json`)],
        );
        expect(groups.map((g) => [g.key, g.complete, g.size])).toEqual([[B, true, 10], [A, true, 999]]);
        expect(groups[1].objects.map((o) => o.key)).toEqual([A, `${A}.globals.sql`, `${A}.verify.json`, `${A}.manifest.json`]);
    });

    it("a dump whose manifest is gone for good is incomplete; safety dumps are marked", () => {
        const groups = groupHidden([h(A), h("db/safety/db-20261120-030000-cccc.dump"), h("db/safety/db-20261120-030000-cccc.dump.manifest.json")], []);
        expect(groups.map((g) => [g.key, g.complete, g.safety])).toEqual([["db/safety/db-20261120-030000-cccc.dump", true, true], [A, false, false]]);
    });
});

describe("undelete's choices (no store involved)", () => {
    const log = new Logger("json", new PassThrough());
    /** A versioned store in memory: what undelete sees and does. */
    function store(hidden: HiddenObject[]): Target & { restored: string[] } {
        const restored: string[] = [];
        return {
            kind: "s3", location: "s3://b/p", restored,
            upload: () => { throw new Error("unused"); },
            putSmall: async () => undefined,
            get: async () => { throw new Error("unused"); },
            delete: async (): Promise<DeleteOutcome> => ({ result: "absent" }),
            list: async () => [],
            listHidden: async () => hidden,
            restoreHidden: async (o) => {
                restored.push(o.key);
                return "removed 1 delete marker(s)";
            },
        };
    }
    const h = (key: string): HiddenObject => ({ key, size: 1, lastModified: at("01:00:00"), how: "delete marker", handle: key });
    const full = (name: string) => [h(`db/${name}`), h(`db/${name}.manifest.json`)];

    it("takes the newest complete backup, never a safety dump or an incomplete one unless named", async () => {
        const t = store([
            ...full("db-20261120-010000-aaaa.dump"),
            h("db/db-20261120-030000-bbbb.dump"),
            h("db/safety/db-20261120-040000-cccc.dump"), h("db/safety/db-20261120-040000-cccc.dump.manifest.json"),
        ]);
        const r = await runUndelete([t], { database: "db" }, log);
        expect(r.backup).toBe("db-20261120-010000-aaaa.dump");
        expect(t.restored).toEqual(["db/db-20261120-010000-aaaa.dump", "db/db-20261120-010000-aaaa.dump.manifest.json"]);
        const named = await runUndelete([t], { database: "db", backup: "db/safety/db-20261120-040000-cccc.dump" }, log);
        expect(named.restored.map((x) => x.key)).toEqual(["db/safety/db-20261120-040000-cccc.dump", "db/safety/db-20261120-040000-cccc.dump.manifest.json"]);
    });

    it("refuses with the reason: nothing hidden (exit 1), an unknown --from (exit 2), a local directory only (exit 2)", async () => {
        await expect(runUndelete([store([])], { database: "db" }, log)).rejects.toMatchObject({ exitCode: 1, message: expect.stringMatching(/no deleted complete backup of db on s3:\/\/b\/p/) });
        await expect(runUndelete([store([])], { database: "db", from: "azure" }, log)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/--from azure: no such target is configured \(configured: s3\)/) });
        await expect(runUndelete([new LocalTarget("/tmp")], { database: "db" }, log)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/has no versions/) });
    });
});

describe("a delete's outcome, in words", () => {
    it("never says deleted when the store kept the data", () => {
        expect(describeDelete({ result: "deleted" })).toBe("deleted");
        expect(describeDelete({ result: "absent" })).toBe("already gone");
        expect(describeDelete({ result: "hidden", note: "delete marker written", retainedUntil: new Date("2026-12-01T00:00:00Z") }))
            .toBe("hidden, not deleted: delete marker written; the data is retained until 2026-12-01T00:00:00.000Z");
        expect(describeDelete({ result: "retained", note: "the container's immutability policy refuses the delete", retainedUntil: new Date("2026-12-01T00:00:00Z") }))
            .toBe("not deleted, still listed: the container's immutability policy refuses the delete; the data is retained until 2026-12-01T00:00:00.000Z; prune tries again on its next run");
    });

    it("Azure's WORM refusals are told apart from other failures", () => {
        expect(refusedByLock({ statusCode: 409, code: "BlobImmutableDueToPolicy" })).toBe(true);
        expect(refusedByLock({ statusCode: 409, code: "BlobImmutableDueToLegalHold" })).toBe(true);
        expect(refusedByLock({ statusCode: 409, code: "LeaseIdMissing" })).toBe(false);
        expect(refusedByLock({ statusCode: 403, code: "AuthorizationPermissionMismatch" })).toBe(false);
    });
});

describe("Azure on azurite (no versioning, no soft delete): what a delete reports follows the account's settings", () => {
    let azure: AzureEmulator;
    beforeAll(async () => {
        azure = await startAzurite();
    }, 60_000);
    afterAll(async () => {
        await azure?.stop();
    });

    it("deleted while soft delete is off; soft-deleted for N days once the account keeps deleted blobs", async () => {
        const t = new AzureTarget({ container: azure.container, prefix: "p", connectionString: azure.connectionString });
        await t.putSmall("db/a.json", "{}");
        expect(await t.delete("db/a.json")).toEqual({ result: "deleted" });
        expect(await t.listHidden("db/")).toEqual([]);
        await BlobServiceClient.fromConnectionString(azure.connectionString).setProperties({ deleteRetentionPolicy: { enabled: true, days: 7 } });
        const fresh = new AzureTarget({ container: azure.container, prefix: "p", connectionString: azure.connectionString });
        await fresh.putSmall("db/b.json", "{}");
        expect(await fresh.delete("db/b.json")).toEqual({ result: "hidden", note: "soft-deleted: recoverable for 7 day(s)" });
    });
});
