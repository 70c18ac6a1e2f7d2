/**
 * The server verify restores into, never production: the verify pod's sidecar or another server
 * given by VERIFY_PGHOST, else a throwaway local cluster (removed on release, and on a stop).
 */
import { JobError, Logger } from "../log";
import { PgCluster, serverBinDirs, startPostgres } from "../ephemeral";
import { Settings } from "../settings";
import { onStop } from "../shutdown";

export interface ScratchServer {
    settings: Settings;
    /** Server binaries of the throwaway cluster (their client tools match it). */
    binDir?: string;
    /** True for a server that outlives the run (VERIFY_PGHOST): what verify creates there it removes. */
    shared: boolean;
    release(): void;
}

export async function scratchServer(s: Settings, serverMajor: number, log: Logger): Promise<ScratchServer> {
    if (s.verifyPgHost) {
        return {
            settings: { ...s, pgHost: s.verifyPgHost, pgPort: s.verifyPgPort, pgUser: s.verifyPgUser, pgPassword: s.verifyPgPassword, pgPassFile: undefined, pgSslMode: "prefer" },
            shared: true,
            release: () => undefined,
        };
    }
    const dirs = serverBinDirs().filter((d) => d.major >= serverMajor);
    const bin = dirs.find((d) => d.major === serverMajor) ?? dirs[0];
    if (!bin) {
        throw new JobError(
            `no verify server: set VERIFY_PGHOST, or install PostgreSQL ${serverMajor} server binaries (initdb) so verify can start a throwaway one`,
            2,
        );
    }
    log.info(`starting a throwaway PostgreSQL ${bin.major} for the restore test`, { event: "verify.scratch", binDir: bin.dir });
    const cluster: PgCluster = await startPostgres({ binDir: bin.dir });
    const release = onStop("remove the throwaway PostgreSQL", () => cluster.remove());
    return {
        settings: { ...s, pgHost: cluster.host, pgPort: cluster.port, pgUser: cluster.user, pgPassword: cluster.password, pgPassFile: undefined, pgSslMode: "disable" },
        binDir: bin.dir,
        shared: false,
        release: () => {
            release();
            cluster.remove();
        },
    };
}
