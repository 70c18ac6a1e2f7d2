/**
 * The contract every target passes (local, S3, Azure; emulators and RGW): staged uploads that
 * become visible only on commit, exclusive writes, aborts that remove exactly what they created,
 * and deletes that say what they did.
 */
import { createHash, randomBytes } from "crypto";
import { describe, expect, it } from "vitest";
import { ObjectExistsError, readText, Target } from "../../jobs/src/targets";

export const MIB = 1024 * 1024;

export async function writeAll(sink: NodeJS.WritableStream, data: Buffer, chunk = 256 * 1024): Promise<void> {
    for (let i = 0; i < data.length; i += chunk) {
        if (!sink.write(data.subarray(i, i + chunk))) {
            await new Promise((r) => sink.once("drain", r));
        }
    }
    sink.end();
}

export async function sha(stream: NodeJS.ReadableStream): Promise<string> {
    const h = createHash("sha256");
    for await (const c of stream) {
        h.update(c as Buffer);
    }
    return h.digest("hex");
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Streams `data` into a fresh upload and waits until it is staged (not committed). */
export async function stage(t: Target, key: string, data: Buffer, o: { runId?: string; signal?: AbortSignal } = {}) {
    const up = t.upload(key, { expectedBytes: data.length, runId: o.runId, signal: o.signal ?? new AbortController().signal });
    await Promise.all([writeAll(up.sink, data), up.done()]);
    return up;
}

export interface ContractOptions {
    /** The store honours exclusive writes (s3rver ignores If-None-Match). */
    exclusive: boolean;
    /** What a delete of an existing object reports. */
    deleteResult: "deleted" | "hidden";
}

/** Keys are made unique per call so suites can share a store. */
export function targetContract(kind: string, make: () => Target, o: ContractOptions): void {
    const run = randomBytes(3).toString("hex");
    const k = (db: string, name = "20260101-000000-abcd.dump") => `${db}${run}/${db}${run}-${name}`;

    describe(`${kind}: the target contract`, () => {
        it("stages a streamed object (several parts) invisibly, commits it, and gives back the same bytes", async () => {
            const t = make();
            const key = k("big");
            const data = randomBytes(12 * MIB + 12345);
            const up = await stage(t, key, data);
            expect((await t.list(key.slice(0, key.indexOf("/") + 1))).map((x) => x.key)).not.toContain(key);
            await up.commit();
            const listed = await t.list(key.slice(0, key.indexOf("/") + 1));
            expect(listed.map((x) => [x.key, x.size])).toEqual([[key, data.length]]);
            expect(listed[0].lastModified.getTime()).toBeGreaterThan(Date.now() - 120_000);
            expect(await sha(await t.get(key))).toBe(sha256(data));
        });

        it("stores a stream smaller than one part, and an empty one", async () => {
            const t = make();
            for (const data of [randomBytes(70_000), Buffer.alloc(0)]) {
                const key = k(`small${data.length}`);
                await (await stage(t, key, data)).commit();
                expect(await sha(await t.get(key))).toBe(sha256(data));
            }
        });

        it("stores small objects whole and lists only the asked prefix", async () => {
            const t = make();
            await t.putSmall(`db2${run}/a.manifest.json`, '{"ok":true}');
            await t.putSmall(`db22${run}/b.manifest.json`, "{}");
            expect(await readText(t, `db2${run}/a.manifest.json`)).toBe('{"ok":true}');
            expect((await t.list(`db2${run}/`)).map((x) => x.key)).toEqual([`db2${run}/a.manifest.json`]);
        });

        it("leaves nothing behind when an upload is aborted midway", async () => {
            const t = make();
            const up = t.upload(k("mid"), { expectedBytes: 0, signal: new AbortController().signal });
            up.sink.write(randomBytes(9 * MIB));
            await new Promise((r) => setTimeout(r, 300));
            await up.abort(new Error("test"));
            await expect(up.done()).rejects.toBeDefined();
            await expect(up.commit()).rejects.toBeDefined();
            expect(await t.list(`mid${run}/`)).toEqual([]);
        });

        it("stops and removes what it staged when its signal aborts (SIGTERM)", async () => {
            const t = make();
            const stop = new AbortController();
            const up = t.upload(k("sig"), { expectedBytes: 0, signal: stop.signal });
            up.sink.write(randomBytes(11 * MIB));
            await new Promise((r) => setTimeout(r, 300));
            stop.abort(new Error("stopped by SIGTERM"));
            await expect(up.done()).rejects.toThrow(/SIGTERM/);
            await up.abort();
            expect(await t.list(`sig${run}/`)).toEqual([]);
        });

        it("removes its own committed object when the backup it belongs to is abandoned", async () => {
            const t = make();
            const up = await stage(t, k("own"), randomBytes(MIB));
            await up.commit();
            await up.abort();
            expect(await t.list(`own${run}/`)).toEqual([]);
        });

        it("deletes, says what it did, and deleting a missing key is not an error", async () => {
            const t = make();
            await t.putSmall(`del${run}/x.json`, "1");
            expect((await t.delete(`del${run}/x.json`)).result).toBe(o.deleteResult);
            expect(await t.delete(`del${run}/never-existed.json`)).toEqual({ result: "absent" });
            expect(await t.list(`del${run}/`)).toEqual([]);
        });

        it("fails to get a missing key", async () => {
            await expect(make().get(`nope${run}/nothing.dump`)).rejects.toBeDefined();
        });

        it.runIf(o.exclusive)("never overwrites: of two writers of one key, the second fails and the first's object stays whole", async () => {
            const t = make();
            const key = k("race");
            const [a, b] = [randomBytes(7 * MIB), randomBytes(6 * MIB)];
            const upA = await stage(t, key, a);
            // The second writer fails when it stages (local: the .partial is taken) or when it commits.
            const upB = t.upload(key, { expectedBytes: b.length, signal: new AbortController().signal });
            upB.sink.on("error", () => undefined);
            const stagedB = Promise.all([writeAll(upB.sink, b), upB.done()]);
            await upA.commit();
            const lost = await stagedB.then(() => upB.commit()).then(() => undefined, (e) => e as Error);
            expect(lost).toBeInstanceOf(ObjectExistsError);
            expect(lost?.message).toMatch(/already exists on .*never overwrites/);
            // The loser cleans up after itself only: the winner's object is untouched.
            await upB.abort(new Error("lost"));
            expect(await sha(await t.get(key))).toBe(sha256(a));
            expect((await t.list(`race${run}/`)).map((x) => x.key)).toEqual([key]);
        });

        it.runIf(o.exclusive)("small objects are exclusive too, unless replacing is asked for", async () => {
            const t = make();
            const key = `once${run}/m.manifest.json`;
            await t.putSmall(key, "first");
            await expect(t.putSmall(key, "second")).rejects.toBeInstanceOf(ObjectExistsError);
            expect(await readText(t, key)).toBe("first");
            await t.putSmall(key, "third", { replace: true });
            expect(await readText(t, key)).toBe("third");
        });
    });
}
