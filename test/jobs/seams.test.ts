/**
 * The seams between work written in parallel: manifests of different generations side by side,
 * a target that cannot be read next to one that can, a command run from another database's job
 * template. Each test is a way found to raise a false alarm, hide a failure or delete what is
 * still needed, and fails without its fix. No PostgreSQL here (seams.e2e.test.ts has the rest).
 */
import { spawnSync } from "child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { PassThrough } from "stream";
import { afterEach, describe, expect, it } from "vitest";
import { anomalyReasons } from "../../jobs/src/anomaly";
import { groupBackups } from "../../jobs/src/catalog";
import { locate } from "../../jobs/src/fetch";
import { Logger } from "../../jobs/src/log";
import { parseManifest, signManifest } from "../../jobs/src/manifest";
import { resolveTables } from "../../jobs/src/restore/toc";
import { planPrune } from "../../jobs/src/retention";
import { collectStatus } from "../../jobs/src/status";
import { LocalTarget, StoredObject, Target } from "../../jobs/src/targets";
import { runUndelete } from "../../jobs/src/undelete";
import { logLines, runCli } from "../helpers/cli";
import { manifestFor } from "../helpers/manifests";

const DAY = 86_400_000;
const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);

const dirs: string[] = [];
afterEach(() => {
    for (const d of dirs.splice(0)) {
        rmSync(d, { recursive: true, force: true });
    }
});
function tmp(): string {
    const d = mkdtempSync(path.join(os.tmpdir(), "kx-seams-"));
    dirs.push(d);
    return d;
}

/** Every file under a directory, relative. */
function files(dir: string): string[] {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
        .sort();
}

/** A complete backup (or archive) of `db` taken `age` days ago, laid out as kx-backup writes it. */
function seed(dir: string, db: string, age: number, ext: "dump" | "tar.gz" = "dump"): string {
    const key = `${db}/${db}-${stamp(new Date(Date.now() - age * DAY))}-${Math.random().toString(16).slice(2, 8)}.${ext}`;
    mkdirSync(path.join(dir, db), { recursive: true });
    writeFileSync(path.join(dir, key), "dump");
    const over = ext === "tar.gz" ? { kind: "kx-backup/archive" as const, format: "tar.gz" as const, container: "tar.gz" as const } : {};
    writeFileSync(path.join(dir, `${key}.manifest.json`), JSON.stringify(manifestFor(key, "dump", over)));
    return key;
}

describe("the anomaly baseline across the upgrade to counts from the dump stream", () => {
    const t = { sizeDropPercent: 50, rowsDropPercent: 50, minRows: 1000 };
    // An inheritance parent (the pre-partitioning way: events, with one child per month) holds no
    // rows of its own. The last backup before the upgrade counted it with count(*), children
    // included; the first one after counts what pg_dump's COPY of it wrote: its own rows.
    const tables = (parent: number) => [
        { schema: "public", name: "events", rows: parent },
        { schema: "public", name: "events_2026_05", rows: 6000 },
        { schema: "public", name: "events_2026_06", rows: 4000 },
    ];
    const v1 = parseManifest(JSON.stringify({
        kind: "kx-backup/postgres", manifestVersion: 1, database: "ce", key: "ce/ce-20260601-000000.dump", format: "custom", container: "pg_dump",
        options: { schemaOnly: false, dataOnly: false, tables: [], jobs: 1 }, size: 1000, sha256: "a".repeat(64),
        tables: { "public.events": 10000, "public.events_2026_05": 6000, "public.events_2026_06": 4000 },
    }), "v1");
    const snapshot = manifestFor("ce/ce-20260601-000000-aaaaaa.dump", "x", { size: 1000, tables: tables(10000), counts: { method: "snapshot-query" } });
    const stream = manifestFor("ce/ce-20260601-060000-bbbbbb.dump", "x", { size: 1000, tables: tables(0), counts: { method: "dump-stream" } });

    it("is not flagged when only the way of counting changed (v1 and v2 snapshot-query baselines)", () => {
        expect(v1.counts.method).toBe("snapshot-query");
        expect(anomalyReasons(stream, v1, t)).toEqual([]);
        expect(anomalyReasons(stream, snapshot, t)).toEqual([]);
    });

    it("still flags a table that is gone, and a size collapse, across the change", () => {
        const gone = { ...stream, tables: stream.tables.filter((x) => x.name !== "events_2026_05") };
        expect(anomalyReasons(gone, snapshot, t)).toEqual(["public.events_2026_05: table gone (had 6000 rows)"]);
        expect(anomalyReasons({ ...stream, size: 100 }, snapshot, t)).toEqual(["size 1000 B → 100 B (-90 %)"]);
    });

    it("compares rows again once both backups count from the dump stream", () => {
        const next = { ...stream, tables: tables(0).map((x) => (x.name === "events_2026_05" ? { ...x, rows: 10 } : x)) };
        expect(anomalyReasons(next, stream, t)).toEqual(["public.events_2026_05: 6000 → 10 rows (-100 %)"]);
    });
});

/** A target of another kind reading the same directory (a second target without S3 or Azure). */
function as(kind: string, inner: Target): Target {
    return { ...inner, kind, location: `${kind}://${inner.location}`, list: (p) => inner.list(p), get: (k) => inner.get(k), upload: (k, o) => inner.upload(k, o), putSmall: (k, b, o) => inner.putSmall(k, b, o), delete: (k) => inner.delete(k) };
}

describe("status when the first target cannot be read", () => {
    const objectives = { rpoHours: 6, rtoMinutes: 30, verifyMaxAgeDays: 7 };

    it("names the unreadable target for every database the other targets show", async () => {
        const good = tmp();
        seed(good, "kong", 0.1);
        // BACKUP_LOCAL_DIR pointing at a file (a mistyped mount path): the listing fails.
        const file = path.join(tmp(), "not-a-dir");
        writeFileSync(file, "");
        const rows = await collectStatus([new LocalTarget(file), as("s3", new LocalTarget(good))], undefined, objectives, new Date());
        expect(rows.map((r) => r.database)).toEqual(["kong"]);
        expect(rows[0].ok).toBe(false);
        expect(rows[0].problems.join("\n")).toMatch(/kong: target local unreadable: file:\/\/.*not-a-dir: ENOTDIR/);
    });

    it("says no target could be read, and why, rather than \"no backups\"", async () => {
        const file = path.join(tmp(), "not-a-dir");
        writeFileSync(file, "");
        await expect(collectStatus([new LocalTarget(file)], undefined, objectives, new Date())).rejects.toThrow(/no target could be read: file:\/\/.*not-a-dir: ENOTDIR/);
    });
});

describe("prune run from one database's job template", () => {
    it("prunes that database only: another database's backups, and archives, keep their own retention", async () => {
        const dir = tmp();
        // crypto_exchange keeps 30 days; kong's job keeps 7. Both share the target.
        const ce = [seed(dir, "crypto_exchange", 0.2), seed(dir, "crypto_exchange", 10), seed(dir, "crypto_exchange", 20)];
        const kong = [seed(dir, "kong", 0.2), seed(dir, "kong", 10)];
        const before = files(dir);
        // `kubectl create job --from=cronjob/kx-backup-kong … -- kx-backup prune`: PGDATABASE=kong.
        const r = await runCli(["prune"], { BACKUP_LOCAL_DIR: dir, PGDATABASE: "kong", BACKUP_RETENTION_DAYS: "7", BACKUP_KEEP_MIN: "1" });
        expect(r.code, r.stderr).toBe(0);
        expect(files(dir)).toEqual(before.filter((f) => !f.startsWith(kong[1])));
        expect(files(dir)).toEqual(expect.arrayContaining(ce));
        expect(logLines(r.stderr).filter((l) => l.event === "prune.summary").map((l) => l.database)).toEqual(["kong"]);
    });

    it("without any database, prunes dumps only: an archive (kept until its own job prunes it) stays", async () => {
        const dir = tmp();
        const archives = [seed(dir, "grafana-volume", 0.2, "tar.gz"), seed(dir, "grafana-volume", 40, "tar.gz")];
        const dumps = [seed(dir, "kong", 0.2), seed(dir, "kong", 40)];
        const r = await runCli(["prune"], { BACKUP_LOCAL_DIR: dir, BACKUP_RETENTION_DAYS: "7", BACKUP_KEEP_MIN: "1" });
        expect(r.code, r.stderr).toBe(0);
        expect(files(dir)).toEqual(expect.arrayContaining(archives));
        expect(files(dir)).not.toContain(dumps[1]);
    });
});

describe("a database only ever restored into: safety dumps and nothing else", () => {
    const NOW = new Date("2026-06-30T12:00:00Z");
    /** What a target lists after four `restore --into crypto_exchange_test --force` runs over a month. */
    const listing = (): StoredObject[] =>
        [1, 3, 9, 20].flatMap((age) => {
            const key = `crypto_exchange_test/safety/crypto_exchange_test-${stamp(new Date(NOW.getTime() - age * DAY))}-${Math.random().toString(16).slice(2, 8)}.dump`;
            return [key, `${key}.manifest.json`].map((k) => ({ key: k, size: 1, lastModified: NOW }));
        });

    it("prune applies the safety retention, instead of calling backups stale (exit 1, every run) and keeping every dump", () => {
        const entries = groupBackups(listing());
        const plan = planPrune(entries, { retentionDays: 30, keepMin: 2, safetyRetentionDays: 7 }, NOW);
        expect(plan.stale).toBeUndefined();
        expect(plan.delete.map((a) => a.key).sort()).toEqual([entries[2].key, entries[3].key].sort());
    });

    it("the stale guard still holds where backups stopped, safety dumps or not", () => {
        const old = `crypto_exchange/crypto_exchange-${stamp(new Date(NOW.getTime() - 40 * DAY))}-aaaaaa.dump`;
        const safety = `crypto_exchange/safety/crypto_exchange-${stamp(new Date(NOW.getTime() - 20 * DAY))}-bbbbbb.dump`;
        const entries = groupBackups([old, `${old}.manifest.json`, safety, `${safety}.manifest.json`].map((key) => ({ key, size: 1, lastModified: NOW })));
        const plan = planPrune(entries, { retentionDays: 30, keepMin: 1, safetyRetentionDays: 7 }, NOW);
        expect(plan.stale).toMatch(/older than 30 days: backups are failing; nothing deleted/);
        expect(plan.delete).toEqual([]);
    });
});

describe("a local listing that fails half-way", () => {
    it("a folder that can be read but not searched (chmod -R 644) fails list, prune and status instead of looking empty", async () => {
        const dir = tmp();
        chmodSync(dir, 0o755);
        const keys = [seed(dir, "kong", 0.1), seed(dir, "kong", 40)];
        // readdir needs read permission only; stat of each file needs search (x) on the folder.
        chmodSync(path.join(dir, "kong"), 0o644);
        const user = { uid: Number(spawnSync("id", ["-u", "postgres"]).stdout.toString()), gid: Number(spawnSync("id", ["-g", "postgres"]).stdout.toString()) };
        const env = { BACKUP_LOCAL_DIR: dir, PGDATABASE: "kong", BACKUP_RETENTION_DAYS: "7", BACKUP_KEEP_MIN: "1" };
        for (const command of ["list", "prune", "status"]) {
            const r = await runCli([command], env, user);
            expect(r.code, `${command}: ${r.stderr}`).toBe(1);
            expect(r.stdout, command).not.toMatch(/no backups found/);
            expect(logLines(r.stderr).find((l) => l.level === "error")?.msg, command).toMatch(/file:\/\/.*: EACCES: permission denied, stat '.*kong\/kong-/);
        }
        chmodSync(path.join(dir, "kong"), 0o755);
        expect(files(dir)).toEqual(keys.flatMap((k) => [k, `${k}.manifest.json`]).sort());
    });
});

describe("a signing key set after unsigned backups exist (the upgrade)", () => {
    const KEY = "k".repeat(32);

    it("nothing is lost: the older backups are kept and listed, and a refusal says how to use one", async () => {
        const dir = tmp();
        const unsigned = [seed(dir, "kong", 10), seed(dir, "kong", 40)];
        const env = { BACKUP_LOCAL_DIR: dir, PGDATABASE: "kong", BACKUP_RETENTION_DAYS: "7", BACKUP_KEEP_MIN: "1", BACKUP_SIGNING_KEY: KEY, PGHOST: "127.0.0.1", PGPORT: "1" };
        const before = files(dir);

        const prune = await runCli(["prune"], env);
        expect(prune.code, prune.stderr).toBe(0);
        expect(files(dir)).toEqual(before);
        expect(logLines(prune.stderr).filter((l) => l.event === "prune.note").map((l) => l.msg)).toEqual(
            unsigned.map((k) => expect.stringContaining(`${k}: manifest is not signed (BACKUP_SIGNING_KEY is set): written before the key was set, or forged: kept, never used`)),
        );

        const list = await runCli(["list", "--json"], env);
        expect(JSON.parse(list.stdout).map((r: any) => r.status)).toEqual(["unreadable", "unreadable"]);

        for (const args of [["restore", "--into", "kong_copy"], ["verify"]]) {
            const r = await runCli(args, env);
            expect(r.code, r.stderr).toBe(1);
            const msg = logLines(r.stderr).find((l) => l.level === "error")?.msg;
            expect(msg, args.join(" ")).toMatch(new RegExp(`no complete full backup of kong on local .*; 2 skipped as their manifests do not verify, the newest: ${unsigned[0]}\\.manifest\\.json on local is not signed: ` +
                "refusing to use it .*Backups written before BACKUP_SIGNING_KEY was set are unsigned too: to use one you trust, run this command once without BACKUP_SIGNING_KEY"));
            expect(r.stderr, args.join(" ")).not.toContain(KEY);
        }
        const named = await runCli(["restore", "--into", "kong_copy", "--backup", path.basename(unsigned[1])], env);
        expect(named.code, named.stderr).toBe(1);
        expect(logLines(named.stderr).find((l) => l.level === "error")?.msg).toMatch(
            /is not signed: refusing to use it .*Backups written before BACKUP_SIGNING_KEY was set are unsigned too: to use one you trust, run this command once without BACKUP_SIGNING_KEY/,
        );
    });

    it("latest is the newest backup that verifies: an unsigned one (a laptop without the key, or forged) is skipped, not in the way", async () => {
        const dir = tmp();
        const signed = `kong/kong-${stamp(new Date(Date.now() - DAY))}-aaaaaa.dump`;
        mkdirSync(path.join(dir, "kong"), { recursive: true });
        writeFileSync(path.join(dir, signed), "dump");
        writeFileSync(path.join(dir, `${signed}.manifest.json`), JSON.stringify(signManifest(manifestFor(signed, "dump"), KEY)));
        const laptop = seed(dir, "kong", 0.1);
        const out = new PassThrough();
        let said = "";
        out.on("data", (d) => (said += d));
        const found = await locate(new LocalTarget(dir), "kong", "latest", { signingKey: KEY, log: new Logger("json", out) });
        expect(found.entry.key).toBe(signed);
        expect(said).toMatch(new RegExp(`\`latest\` skips ${laptop}\.manifest\.json on local is not signed`));
        await expect(locate(new LocalTarget(dir), "kong", path.basename(laptop), { signingKey: KEY })).rejects.toThrow(/is not signed: refusing to use it/);
    });
});

describe("--tables against a data-only backup's table of contents", () => {
    const entry = (id: number, desc: string, name: string) => ({ id, desc, schema: "public", name, owner: "postgres" });

    it("names its tables by their data (it has no TABLE entries), and still refuses unknown ones", () => {
        const toc = [entry(1, "ENCODING", "ENCODING"), entry(3301, "TABLE DATA", "orders"), entry(3302, "TABLE DATA", "wallets"), entry(3303, "SEQUENCE SET", "orders_id_seq")];
        expect(resolveTables(toc, ["orders"])).toEqual([{ schema: "public", name: "orders" }]);
        expect(resolveTables(toc, ["public.*"])).toEqual([{ schema: "public", name: "orders" }, { schema: "public", name: "wallets" }]);
        expect(() => resolveTables(toc, ["trades"])).toThrow(/trades: no such table in the backup \(the backup has 2 table\(s\): public\.orders, public\.wallets\)/);
    });

    it("a dump with definitions still resolves against them only (an extension's configuration data is no table of the dump)", () => {
        const toc = [entry(200, "TABLE", "orders"), entry(3301, "TABLE DATA", "orders"), { ...entry(3302, "TABLE DATA", "job"), schema: "cron" }];
        expect(resolveTables(toc, ["*.*"])).toEqual([{ schema: "public", name: "orders" }]);
    });
});

describe("undelete of a database that shares its folder with an archive of the same name", () => {
    it("brings back the newest database backup, not the newer archive (archive --name kong)", async () => {
        const at = (age: number) => stamp(new Date(Date.now() - age * DAY));
        const dump = `kong/kong-${at(2)}-aaaaaa.dump`;
        const archive = `kong/kong-${at(1)}-bbbbbb.tar.gz`;
        const hidden = [dump, `${dump}.manifest.json`, archive, `${archive}.manifest.json`].map((key) => ({ key, size: 4, lastModified: new Date(), how: "delete marker", handle: key }));
        const restored: string[] = [];
        const s3: Target = {
            kind: "s3", location: "s3://backups/",
            upload: () => { throw new Error("not used"); }, putSmall: async () => { throw new Error("not used"); }, get: async () => { throw new Error("not used"); }, delete: async () => { throw new Error("not used"); },
            list: async () => [],
            listHidden: async () => hidden,
            restoreHidden: async (o) => {
                restored.push(o.key);
                return "removed 1 delete marker(s)";
            },
        };
        const r = await runUndelete([s3], { database: "kong" }, new Logger("json", new PassThrough()));
        expect(r.backup).toBe(path.basename(dump));
        expect(restored).toEqual([dump, `${dump}.manifest.json`]);
    });
});
