/**
 * The daemon's pool of pre-started VMMs (manager/sandbox/vmm_pool.ts) with real, jailed
 * VMMs: a start takes a pooled process, no process serves two domains, a killed daemon
 * leaves no pooled process behind, and `--vmm-pool 0` starts VMMs as before.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ApiClient } from "../manager/api_client.ts";
import type { DomainInfo } from "../manager/api_types.ts";
import { processStartTime } from "../manager/daemon/vmm_process.ts";
import { releaseTaps } from "../manager/sandbox/tap_setup.ts";
import { kvmTest } from "./kvm_support.ts";
import { domainGuest } from "./daemon_support.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A `denovisor daemon --vmm-pool N` on a private directory. */
class PoolDaemon {
  readonly dir: string;
  readonly api: ApiClient;
  readonly child: Deno.ChildProcess;

  private constructor(dir: string, child: Deno.ChildProcess) {
    this.dir = dir;
    this.child = child;
    this.api = new ApiClient(`${dir}/api.sock`);
  }

  static async start(pool: number): Promise<PoolDaemon> {
    const dir = await Deno.makeTempDir({ prefix: "denovisor-pool-test-" });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--no-prompt",
        MAIN,
        "daemon",
        "--state-dir",
        dir,
        "--socket",
        `${dir}/api.sock`,
        "--vmm-pool",
        String(pool),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const daemon = new PoolDaemon(dir, child);
    await daemon.until(async () => {
      try {
        await daemon.api.get("/v1/host");
        return true;
      } catch {
        return false;
      }
    }, "the daemon to answer");
    return daemon;
  }

  /** The pids of the pooled VMMs (from each slot's pooled.json) still alive; `ready` ones only. */
  pooledPids(ready = false): number[] {
    const pids: number[] = [];
    let entries: Deno.DirEntry[] = [];
    try {
      entries = [...Deno.readDirSync(`${this.dir}/vmm-pool`)];
    } catch {
      return pids;
    }
    for (const entry of entries) {
      try {
        const { pid, startTime } = JSON.parse(
          Deno.readTextFileSync(`${this.dir}/vmm-pool/${entry.name}/pooled.json`),
        );
        const slot = `${this.dir}/vmm-pool/${entry.name}`;
        let isReady = true;
        try {
          Deno.statSync(`${slot}/ready`);
        } catch {
          isReady = false;
        }
        if (processStartTime(pid) === startTime && (isReady || !ready)) pids.push(pid);
      } catch {
        // a slot being made or removed
      }
    }
    return pids;
  }

  async until(test: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await test()) return;
      await sleep(50);
    }
    throw new Error(`Timed out waiting for ${what}`);
  }

  async startDomain(name: string): Promise<DomainInfo> {
    const info = await this.api.post<DomainInfo>("/v1/domains?start=1", domainGuest(name));
    await this.until(async () => {
      const log = await (await this.api.request("GET", `/v1/domains/${name}/logs?lines=100`))
        .text();
      return log.includes("domain guest up");
    }, `${name}'s guest`);
    return info;
  }

  async log(name: string): Promise<string> {
    return await (await this.api.request("GET", `/v1/domains/${name}/logs?lines=100`)).text();
  }

  async stop(): Promise<void> {
    for (const domain of await this.api.get<DomainInfo[]>("/v1/domains").catch(() => [])) {
      if (domain.pid) await this.api.post(`/v1/domains/${domain.name}/destroy`).catch(() => {});
    }
    this.api.close();
    try {
      this.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await this.child.status;
    releaseTaps(`${this.dir}/domains`);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** The memory cgroup of `pid` (v1's memory line, else v2's), as /proc/PID/cgroup names it. */
function memoryCgroup(pid: number): string {
  const lines = Deno.readTextFileSync(`/proc/${pid}/cgroup`).split("\n");
  const line = lines.find((l) => /^\d+:memory:/.test(l)) ?? lines.find((l) => l.startsWith("0::"));
  return line?.split(":").slice(2).join(":") ?? "";
}

kvmTest("a start takes a pooled VMM, which serves that one domain and is refilled", async () => {
  const daemon = await PoolDaemon.start(2);
  try {
    await daemon.until(() => daemon.pooledPids(true).length === 2, "2 pooled VMMs ready");
    const pooled = daemon.pooledPids();
    // Loaded in the pool's own cgroup, not the daemon's (whose memory limit it would use up).
    const daemonGroup = memoryCgroup(daemon.child.pid);
    for (const pid of pooled) {
      assert.match(memoryCgroup(pid), /\/denovisor\/vmm-pool\.[0-9a-f]{8}$/, `VMM ${pid}`);
      assert.notEqual(memoryCgroup(pid), daemonGroup);
    }
    const first = await daemon.startDomain("first");
    // Taken: in its domain's group now.
    assert.match(memoryCgroup(first.pid!), /\/denovisor\/first\.[0-9a-f]{8}$/);
    assert.ok(pooled.includes(first.pid!), `VMM ${first.pid} is not one of the pool's ${pooled}`);
    assert.match(await daemon.log("first"), new RegExp(`VMM pid ${first.pid} taken from the pool`));
    // Still jailed: its own PID namespace (pid 1 there) and the VMMs' user.
    const status = Deno.readTextFileSync(`/proc/${first.pid}/status`);
    assert.match(status, /^NSpid:\s+\d+\s+1$/m);
    assert.doesNotMatch(status, /^Uid:\s+0\s/m);
    // The taken one is no longer offered; the pool fills up again without it.
    await daemon.until(
      () => daemon.pooledPids(true).filter((pid) => pid !== first.pid).length === 2,
      "the pool to refill",
    );
    const refilled = daemon.pooledPids(true);
    const second = await daemon.startDomain("second");
    assert.notEqual(second.pid, first.pid);
    assert.ok(refilled.includes(second.pid!), `VMM ${second.pid} is not one of ${refilled}`);
    // A destroyed domain's VMM ends with it: never handed to another domain.
    await daemon.api.post("/v1/domains/first/destroy");
    await daemon.until(() => processStartTime(first.pid!) === undefined, "the VMM to end");
    const third = await daemon.startDomain("third");
    assert.ok(![first.pid, second.pid].includes(third.pid));
    assert.equal((await daemon.api.get<DomainInfo>("/v1/domains/second")).pid, second.pid);
  } finally {
    await daemon.stop();
  }
});

kvmTest("a killed daemon leaves no pooled VMM; a drained one neither", async () => {
  const killed = await PoolDaemon.start(2);
  let pids: number[] = [];
  try {
    await killed.until(() => killed.pooledPids().length === 2, "2 pooled VMMs");
    pids = killed.pooledPids();
    killed.child.kill("SIGKILL");
    await killed.child.status;
    await killed.until(
      () => pids.every((pid) => processStartTime(pid) === undefined),
      `pooled VMMs ${pids} to exit after the daemon's death`,
      30_000,
    );
  } finally {
    for (const pid of pids) {
      if (processStartTime(pid) !== undefined) Deno.kill(pid, "SIGKILL");
    }
    await killed.stop();
  }
  const stopped = await PoolDaemon.start(1);
  await stopped.until(() => stopped.pooledPids().length === 1, "1 pooled VMM");
  const [pid] = stopped.pooledPids();
  await stopped.stop(); // SIGTERM: the pool is drained before the daemon exits
  assert.equal(processStartTime(pid), undefined, `pooled VMM ${pid} outlived its daemon's stop`);
});

kvmTest("--vmm-pool 0 starts each VMM with the launcher, as before", async () => {
  const daemon = await PoolDaemon.start(0);
  try {
    const info = await daemon.startDomain("plain");
    assert.deepEqual(daemon.pooledPids(), []);
    assert.doesNotMatch(await daemon.log("plain"), /taken from the pool/);
    const argv = Deno.readTextFileSync(`/proc/${info.pid}/cmdline`).split("\0");
    assert.ok(argv.includes("--config"), `VMM ${info.pid} runs ${argv.join(" ")}`);
  } finally {
    await daemon.stop();
  }
});
