/**
 * A real S3 server for the tests: Ceph RGW (Debian's radosgw, Ceph 16) on a throwaway
 * single-node cluster — one monitor, one OSD on memstore (RAM, no disk), auth none — bound to
 * 127.0.0.1 on random ports, in its own temp directory. It implements what s3rver does not:
 * versioning, delete markers, Object Lock, Content-MD5 checks. `stop()` ends every daemon and
 * removes the directory; a test process that dies anyway kills them on exit.
 */
import { ChildProcess, execFile, spawn } from "child_process";
import { randomUUID } from "crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { freePort } from "../src/ephemeral";

const run = promisify(execFile);

const BINARIES = ["ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool"];

/** Says which Ceph tool is missing, and how to get it. */
export function missingCeph(): string | undefined {
    const dirs = (process.env.PATH ?? "/usr/bin").split(":");
    for (const b of BINARIES) {
        if (!dirs.some((d) => existsSync(path.join(d, b)))) {
            return `Ceph is needed for the RGW tests: ${b} is missing (Debian: apt-get install radosgw ceph-mon ceph-osd ceph-common)`;
        }
    }
    return undefined;
}

export interface RgwCluster {
    /** RGW itself, http://127.0.0.1:<port>. */
    endpoint: string;
    accessKeyId: string;
    secretAccessKey: string;
    region: string;
    /** The cluster's directory: ceph.conf, log/ (daemon logs). */
    dir: string;
    /** Milliseconds from start() to an RGW answering with a user. */
    startupMs: number;
    stop(): Promise<void>;
}

function conf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
    return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
# RGW, as a daemon, asks for "secure" on its monitor session, which auth none cannot give.
ms mon client mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms cluster mode = crc
ms service mode = crc
ms mon service mode = crc
ms bind ipv6 = false
ms bind msgr1 = false
public addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
# Batch nothing: RGW creates its pools one by one, each a monitor proposal.
paxos propose interval = 0.01
paxos min wait = 0.001
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = ${dir}/run
crash dir = ${dir}/crash
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
mon cluster log file = ${dir}/log/cluster.log
pid file = ${dir}/run/$name.pid
mon data = ${dir}/mon/$name
osd data = ${dir}/osd/$name
keyring = ${dir}/keyring
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw thread pool size = 32
rgw enable usage log = false
rgw enable ops log = false
`;
}

async function answers(url: string): Promise<boolean> {
    return new Promise((resolve) => {
        const req = http.get(url, (res) => {
            res.resume();
            resolve(true);
        });
        req.on("error", () => resolve(false));
        req.setTimeout(1000, () => req.destroy());
    });
}

/** Starts the cluster and RGW, and creates one S3 user. Takes ~10 s (RGW creates its pools). */
export async function startRgw(o: { onStep?: (step: string, ms: number) => void } = {}): Promise<RgwCluster> {
    const missing = missingCeph();
    if (missing) {
        throw new Error(missing);
    }
    const started = Date.now();
    const step = (name: string) => o.onStep?.(name, Date.now() - started);
    const dir = mkdtempSync(path.join(os.tmpdir(), "kx-ceph-"));
    for (const d of ["run", "log", "crash", "mon", "osd/osd.0"]) {
        mkdirSync(path.join(dir, d), { recursive: true });
    }
    const [monPort, rgwPort] = [await freePort(), await freePort()];
    const fsid = randomUUID();
    const cfg = path.join(dir, "ceph.conf");
    writeFileSync(cfg, conf(dir, fsid, monPort, rgwPort));
    const children: ChildProcess[] = [];
    const killAll = () => {
        for (const c of children) {
            if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
                try {
                    process.kill(-c.pid, "SIGKILL");
                } catch {
                    // Already gone.
                }
            }
        }
    };
    process.once("exit", killAll);
    const daemon = (cmd: string, args: string[]): ChildProcess => {
        const c = spawn(cmd, ["-c", cfg, ...args, "-f"], { detached: true, stdio: "ignore" });
        children.push(c);
        return c;
    };
    const ceph = (cmd: string, args: string[], timeout = 60_000) => run(cmd, ["-c", cfg, ...args], { timeout });
    const logTail = () =>
        ["mon.a", "osd.0", "client.rgw"]
            .map((n) => path.join(dir, "log", `${n}.log`))
            .filter(existsSync)
            .map((f) => `--- ${path.basename(f)}\n${readFileSync(f, "utf8").split("\n").slice(-15).join("\n")}`)
            .join("\n");
    const stop = async () => {
        const alive = children.filter((c) => c.exitCode === null && c.signalCode === null);
        for (const c of [...alive].reverse()) {
            try {
                process.kill(-c.pid!, "SIGTERM");
            } catch {
                // Already gone.
            }
        }
        const deadline = Date.now() + 2_000;
        while (alive.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 50));
        }
        killAll();
        process.removeListener("exit", killAll);
        rmSync(dir, { recursive: true, force: true });
    };
    try {
        await run("ceph-authtool", ["--create-keyring", path.join(dir, "keyring"), "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"]);
        await run("monmaptool", ["--create", "--fsid", fsid, "--addv", "a", `[v2:127.0.0.1:${monPort}]`, path.join(dir, "monmap")]);
        await ceph("ceph-mon", ["--mkfs", "-i", "a", "--monmap", path.join(dir, "monmap"), "--keyring", path.join(dir, "keyring")]);
        daemon("ceph-mon", ["-i", "a"]);
        step("monitor started");
        const osdUuid = randomUUID();
        const { stdout: osdId } = await ceph("ceph", ["--connect-timeout", "30", "osd", "new", osdUuid]);
        if (osdId.trim() !== "0") {
            throw new Error(`expected osd 0, got ${osdId.trim()}`);
        }
        await ceph("ceph-osd", ["-i", "0", "--mkfs", "--osd-uuid", osdUuid]);
        daemon("ceph-osd", ["-i", "0"]);
        step("osd started");
        daemon("radosgw", ["-n", "client.rgw"]);
        const endpoint = `http://127.0.0.1:${rgwPort}`;
        const deadline = Date.now() + 90_000;
        while (!(await answers(endpoint))) {
            if (Date.now() > deadline || children.some((c) => c.exitCode !== null)) {
                throw new Error(`RGW did not answer on ${endpoint}`);
            }
            await new Promise((r) => setTimeout(r, 200));
        }
        step("rgw answers");
        const accessKeyId = "KXTEST" + randomUUID().replace(/-/g, "").slice(0, 14).toUpperCase();
        const secretAccessKey = randomUUID().replace(/-/g, "");
        await ceph("radosgw-admin", ["-n", "client.admin", "user", "create", "--uid", "kx", "--display-name", "kx-backup tests", "--access-key", accessKeyId, "--secret-key", secretAccessKey]);
        return { endpoint, dir, accessKeyId, secretAccessKey, region: "us-east-1", startupMs: Date.now() - started, stop };
    } catch (e) {
        const tail = logTail();
        await stop();
        throw new Error(`could not start Ceph RGW: ${(e as Error).message.split("\n").slice(0, 4).join("\n")}\n${tail}`);
    }
}
