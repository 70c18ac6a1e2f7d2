import { spawnSync } from "child_process";
import { chmodSync, mkdtempSync, readdirSync, rmdirSync } from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/pulumiMocks";

describe("npm run drill", () => {
    it("backs up, lists, verifies, restores and dry-run prunes the runbook's databases, reports against RPO/RTO, and cleans up", () => {
        // Its own temp dir (readable by the postgres user), to see that it leaves nothing behind.
        const tmp = mkdtempSync(path.join(os.tmpdir(), "drill-test-"));
        chmodSync(tmp, 0o755);
        const r = spawnSync(process.execPath, [path.join(ROOT, "dist", "drill.js")], { encoding: "utf8", timeout: 240_000, env: { ...process.env, TMPDIR: tmp } });
        expect(r.status, r.stdout + r.stderr).toBe(0);
        const out = r.stdout;
        for (const db of ["crypto_exchange", "kong", "goalert"]) {
            expect(out).toMatch(new RegExp(`✓ backup ${db} ok: .* to local, s3, azure`));
            expect(out).toMatch(new RegExp(`✓ ${db}: \\d+ steps passed, restored in [\\d.]+ s \\([\\d.]+ s end to end\\)`));
            // The report's restore time (RTO) is the one verify measured end to end (never rounded away to 0.0 s).
            const measured = new RegExp(`✓ ${db}: \\d+ steps passed, restored in [\\d.]+ s \\(([\\d.]+ s) end to end\\)`).exec(out)![1];
            expect(out).toMatch(new RegExp(`\\n  ${db}\\s+[\\d.]+ [KM]iB\\s+[\\d.]+ s\\s+(every 6 h \\(6 h\\)|daily \\(24 h\\))\\s+passed\\s+${measured}\\s+yes`));
        }
        expect(out).toMatch(/restore crypto_exchange\/crypto_exchange-\d{8}-\d{6}-[0-9a-f]{6}\.dump → crypto_exchange_test ok/);
        expect(out).toMatch(/users in crypto_exchange_test: 2000/);
        expect(out).toMatch(/prune kong on azure: would delete 0, kept 1/);
        for (const db of ["crypto_exchange", "kong", "goalert"]) {
            // One verify per database: only the local copy's restore is timed, and the line says so.
            expect(out).toMatch(new RegExp(`✓ ${db}: within RPO on local, s3, azure; restore from local within RTO; s3, azure not timed yet \\(verify times one copy per run\\)`));
            expect(out).toMatch(new RegExp(`\\n  ${db}\\s.*yes\\s+ok\\n`));
        }
        expect(out).toMatch(/\ndrill passed\n$/);
        expect(readdirSync(tmp)).toEqual([]);
        rmdirSync(tmp);
    }, 300_000);
});
