import { loadSettings, Settings } from "../../jobs/src/settings";

/** Settings from an environment, as the job loads them (a local target and a database by default); throws on errors. */
export function settingsFrom(env: Record<string, string>): Settings {
    const r = loadSettings({ BACKUP_LOCAL_DIR: "/b", PGDATABASE: "kong", ...env });
    if (!r.ok) {
        throw new Error(r.errors.join("\n"));
    }
    return r.settings;
}
