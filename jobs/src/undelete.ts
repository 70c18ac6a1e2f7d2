/**
 * `kx-backup list --deleted` and `kx-backup undelete`: backups that a delete hid on a versioned
 * store (an S3 delete marker, an Azure soft-deleted blob or previous version) while the data
 * remains — the ransomware case versioning and Object Lock exist for. The grouping is pure; the
 * stores' own restores (remove the markers; undelete or promote a version) are the targets'.
 */
import { VERIFY_SUFFIX } from "./catalog";
import { renderTable } from "./commands";
import { formatBytes, JobError, Logger } from "./log";
import { artifactFamily, checkDatabaseName, GLOBALS_SUFFIX, isSafetyKey, MANIFEST_SUFFIX, parseBackupName } from "./naming";
import { HiddenObject, StoredObject, Target } from "./targets";

/** Objects stored beside a backup's artifact, restored after it; the manifest last, as it makes the backup complete. */
const COMPANIONS = [GLOBALS_SUFFIX, VERIFY_SUFFIX, MANIFEST_SUFFIX];

export interface HiddenBackup {
    database: string;
    /** The artifact's key. */
    key: string;
    takenAt: Date;
    size: number;
    /** Its artifact and manifest both still exist (hidden or current). */
    complete: boolean;
    safety: boolean;
    how: string;
    hiddenAt?: Date;
    keptUntil?: Date;
    /** What to restore, artifact first and manifest last. */
    objects: HiddenObject[];
}

function artifactOf(key: string): string | undefined {
    const suffix = COMPANIONS.find((s) => key.endsWith(s));
    const artifact = suffix ? key.slice(0, -suffix.length) : key;
    return parseBackupName(artifact) ? artifact : undefined;
}

function order(key: string): number {
    const i = COMPANIONS.findIndex((s) => key.endsWith(s));
    return i < 0 ? -1 : i;
}

/** Backups with hidden objects, newest first. Pure. */
export function groupHidden(hidden: readonly HiddenObject[], visible: readonly StoredObject[]): HiddenBackup[] {
    const current = new Map(visible.map((o) => [o.key, o]));
    const byArtifact = new Map<string, HiddenObject[]>();
    for (const h of hidden) {
        const artifact = artifactOf(h.key);
        if (artifact && !current.has(h.key)) {
            byArtifact.set(artifact, [...(byArtifact.get(artifact) ?? []), h]);
        }
    }
    const out: HiddenBackup[] = [];
    for (const [artifact, objects] of byArtifact) {
        const parsed = parseBackupName(artifact)!;
        const find = (key: string) => objects.find((o) => o.key === key) ?? current.get(key);
        const data = find(artifact);
        const main = objects.find((o) => o.key === artifact) ?? objects[0];
        out.push({
            database: parsed.database,
            key: artifact,
            takenAt: parsed.takenAt,
            size: data?.size ?? 0,
            complete: data !== undefined && find(`${artifact}${MANIFEST_SUFFIX}`) !== undefined,
            safety: isSafetyKey(artifact),
            how: main.how,
            hiddenAt: main.hiddenAt,
            keptUntil: main.keptUntil,
            objects: [...objects].sort((a, b) => order(a.key) - order(b.key)),
        });
    }
    return out.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || a.key.localeCompare(b.key));
}

/** Says plainly that a target cannot hold hidden backups. */
export function noVersions(t: Target): string {
    return `${t.kind} ${t.location} has no versions: a deleted file there is gone, nothing to undelete (s3 and azure keep deleted backups when versioning or soft delete is on)`;
}

/** The hidden backups of one target (of one database, or all). */
export async function listHiddenBackups(t: Target, database?: string): Promise<HiddenBackup[]> {
    if (!t.listHidden) {
        throw new JobError(noVersions(t), 2);
    }
    const prefix = database ? `${database}/` : "";
    let hidden: HiddenObject[];
    let visible: StoredObject[];
    try {
        [hidden, visible] = await Promise.all([t.listHidden(prefix), t.list(prefix)]);
    } catch (e) {
        const denied = /denied|forbidden|authoriz/i.test((e as Error).message) || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 403;
        throw new JobError(`cannot list deleted objects on ${t.location}: ${(e as Error).message}` +
            (denied ? (t.kind === "s3" ? "; it needs s3:ListBucketVersions (run it with an operator's credentials)" : "; it needs a role that can list blob versions and deleted blobs") : ""));
    }
    return groupHidden(hidden, visible).filter((b) => database === undefined || b.database === database);
}

export interface DeletedRow {
    target: string;
    database: string;
    name: string;
    size: number;
    takenAt: string;
    how: string;
    hiddenAt?: string;
    keptUntil?: string;
    status: "complete" | "incomplete";
}

export interface DeletedListing {
    rows: DeletedRow[];
    /** Targets that cannot hold deleted backups, said plainly. */
    notes: string[];
}

export async function collectDeleted(targets: Target[], database: string | undefined): Promise<DeletedListing> {
    const rows: DeletedRow[] = [];
    const notes: string[] = [];
    for (const t of targets) {
        if (!t.listHidden) {
            notes.push(noVersions(t));
            continue;
        }
        for (const b of await listHiddenBackups(t, database)) {
            rows.push({
                target: t.kind,
                database: b.database,
                name: b.key.slice(b.key.indexOf("/") + 1),
                size: b.size,
                takenAt: b.takenAt.toISOString(),
                how: b.how,
                hiddenAt: b.hiddenAt?.toISOString(),
                keptUntil: b.keptUntil?.toISOString(),
                status: b.complete ? "complete" : "incomplete",
            });
        }
    }
    return { rows, notes };
}

export function renderDeleted(listing: DeletedListing): string {
    const notes = listing.notes.map((n) => `note: ${n}\n`).join("");
    if (listing.rows.length === 0) {
        return `no deleted backups found\n${notes}`;
    }
    const table = [
        ["DATABASE", "TARGET", "NAME", "SIZE", "TAKEN", "HIDDEN BY", "STATUS"],
        ...listing.rows.map((r) => [r.database, r.target, r.name, formatBytes(r.size), r.takenAt.slice(0, 19).replace("T", " "), r.how, r.status]),
    ];
    return `${renderTable(table)}${notes}`;
}

export interface UndeleteOptions {
    database: string;
    /** A backup's file name (or key); default: the newest hidden complete backup (safety dumps only when named). */
    backup?: string;
    /** s3 or azure; default: every target with versions. */
    from?: string;
}

export interface Undeleted {
    backup: string;
    restored: { target: string; key: string; action: string }[];
}

/** Brings back one hidden backup (its dump, globals, verify record, manifest) on every chosen target where it is hidden. */
export async function runUndelete(targets: Target[], o: UndeleteOptions, log: Logger): Promise<Undeleted> {
    const bad = checkDatabaseName(o.database);
    if (bad) {
        throw new JobError(bad, 2);
    }
    let chosen = targets;
    if (o.from !== undefined) {
        chosen = targets.filter((t) => t.kind === o.from);
        if (chosen.length === 0) {
            throw new JobError(`--from ${o.from}: no such target is configured (configured: ${targets.map((t) => t.kind).join(", ") || "none"})`, 2);
        }
    }
    const versioned = chosen.filter((t) => t.listHidden);
    if (versioned.length === 0) {
        throw new JobError(chosen.map(noVersions).join("; "), 2);
    }
    const found = await Promise.all(versioned.map(async (t) => ({ t, hidden: await listHiddenBackups(t, o.database) })));
    const wanted = o.backup?.slice(o.backup.lastIndexOf("/") + 1);
    const name = wanted ?? newestComplete(found.flatMap((f) => f.hidden));
    if (!name) {
        throw new JobError(`no deleted complete backup of ${o.database} on ${versioned.map((t) => t.location).join(", ")} (kx-backup list --deleted shows what remains)`);
    }
    const restored: Undeleted["restored"] = [];
    for (const { t, hidden } of found) {
        const b = hidden.find((h) => h.key.slice(h.key.lastIndexOf("/") + 1) === name);
        if (!b) {
            continue;
        }
        if (!b.complete) {
            log.warn(`${b.key} on ${t.kind} has no manifest left: it comes back as an incomplete backup`, { event: "undelete.incomplete", target: t.kind, key: b.key });
        }
        for (const obj of b.objects) {
            const action = await t.restoreHidden!(obj).catch((e) => {
                throw new JobError(`could not restore ${obj.key} on ${t.location}: ${(e as Error).message}` +
                    (/denied|forbidden/i.test((e as Error).message) && t.kind === "s3" ? "; removing a delete marker needs s3:DeleteObjectVersion" : "") +
                    (restored.length > 0 ? `; already restored: ${restored.map((r) => `${r.key} on ${r.target}`).join(", ")}` : ""));
            });
            restored.push({ target: t.kind, key: obj.key, action });
            log.info(`restored ${obj.key} on ${t.kind}: ${action}`, { event: "undelete.object", target: t.kind, key: obj.key });
        }
    }
    if (restored.length === 0) {
        throw new JobError(`${name} is not among the deleted backups of ${o.database} on ${versioned.map((t) => t.location).join(", ")} (kx-backup list --deleted shows them; kx-backup list shows current ones)`);
    }
    return { backup: name, restored };
}

function newestComplete(hidden: HiddenBackup[]): string | undefined {
    // An archive named like the database (archive --name kong) shares its folder: never its newest backup.
    const b = hidden.filter((h) => h.complete && !h.safety && artifactFamily(parseBackupName(h.key)!.ext) === "dump").sort((x, y) => y.takenAt.getTime() - x.takenAt.getTime())[0];
    return b ? b.key.slice(b.key.lastIndexOf("/") + 1) : undefined;
}
