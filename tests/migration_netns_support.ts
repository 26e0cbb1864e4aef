/**
 * Two migration hosts on this machine, as the live-migration issue sets them up: two
 * network namespaces joined by a veth pair (198.18.N.1 and .2, RFC 2544's test range),
 * a daemon in each with its own state directory, API socket and migration listener on
 * its namespace's address, mutual TLS with certificates from `denovisor migration-certs`,
 * and one directory bind-mounted on itself (a mount point, as a `shared` pool requires)
 * defined as the pool `shared` on both. Needs root and `ip netns`; `netnsUsable` says
 * whether it can run here.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { DomainInfo } from "../manager/api_types.ts";
import { denovisor } from "./cli_support.ts";
import { sleep, vmmPids } from "./daemon_support.ts";
import { MigrationDaemon } from "./migration_support.ts";

const ID = String(Deno.pid % 10000);
const FRAMES = new URL("./fixtures/netns_frames.ts", import.meta.url).pathname;
const SUBNET = `198.18.${100 + (Deno.pid % 150)}`;
/** The port each daemon's migration listener takes (in its own namespace). */
export const MIGRATION_PORT = 4789;

function run(command: string, ...args: string[]): { ok: boolean; error: string } {
  try {
    const out = new Deno.Command(command, { args, stdout: "null", stderr: "piped" })
      .outputSync();
    return { ok: out.success, error: new TextDecoder().decode(out.stderr).trim() };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

function must(command: string, ...args: string[]): void {
  const result = run(command, ...args);
  if (!result.ok) throw new Error(`${command} ${args.join(" ")}: ${result.error}`);
}

/**
 * The command prefix that runs a daemon in network namespace `ns` as `ip netns exec`
 * would, with a sysfs of that namespace on /sys (the VMM finds bridges and taps under
 * /sys/class/net), but keeping the host's cgroup hierarchies under /sys/fs/cgroup (the
 * sandbox needs them; `ip netns exec` hides them), bound through `spare` in a private
 * mount namespace.
 */
async function inNamespace(ns: string, spare: string): Promise<string[]> {
  await Deno.mkdir(spare, { recursive: true });
  const script = 'set -e; d=$1; shift; mount --rbind /sys/fs/cgroup "$d"; ' +
    'mount -t sysfs sysfs /sys; mount --rbind "$d" /sys/fs/cgroup; exec "$@"';
  return [
    ...["nsenter", `--net=/run/netns/${ns}`, "unshare", "--mount", "--propagation", "private"],
    ...["sh", "-c", script, "sh", spare],
  ];
}

/** Whether network namespaces, veth pairs and bind mounts can be made here (root). */
export function netnsUsable(): boolean {
  if (Deno.uid() !== 0) return false;
  const probe = `dvmprobe${ID}`;
  if (!run("ip", "netns", "add", probe).ok) return false;
  run("ip", "netns", "del", probe);
  return true;
}

/** One host: its namespace, address and daemon. */
export interface MigrationHost {
  name: string;
  ns: string;
  address: string;
  /** The veth end inside this host's namespace. */
  veth: string;
  dir: string;
  cert: string;
  key: string;
  daemon: MigrationDaemon;
}

/** The two hosts, their link, their certificates and the shared pool. */
export class MigrationHosts {
  readonly dir: string;
  readonly shared: string;
  readonly hosts: MigrationHost[] = [];
  #mounted = false;

  private constructor(dir: string) {
    this.dir = dir;
    this.shared = join(dir, "shared");
  }

  /**
   * Sets everything up; `pools[i]` false leaves host i without the shared pool (a
   * destination that must refuse). On failure, tears down what it made and throws.
   */
  static async start(options: { pools?: boolean[] } = {}): Promise<MigrationHosts> {
    const dir = await Deno.makeTempDir({ prefix: "denovisor-migration-netns-" });
    const hosts = new MigrationHosts(dir);
    try {
      await hosts.#setUp(options.pools ?? [true, true]);
    } catch (error) {
      await hosts.stop();
      throw error;
    }
    return hosts;
  }

  get a(): MigrationHost {
    return this.hosts[0];
  }

  get b(): MigrationHost {
    return this.hosts[1];
  }

  /** `HOST:PORT` of a host's migration listener. */
  dest(host: MigrationHost): string {
    return `${host.address}:${MIGRATION_PORT}`;
  }

  async #setUp(pools: boolean[]): Promise<void> {
    const names = ["host-a", "host-b"];
    const nss = names.map((_, i) => `dvmig${ID}h${i}`);
    const veths = names.map((_, i) => `dvm${ID}h${i}`);
    const addresses = names.map((_, i) => `${SUBNET}.${i + 1}`);
    for (const ns of nss) must("ip", "netns", "add", ns);
    must("ip", "link", "add", veths[0], "type", "veth", "peer", "name", veths[1]);
    nss.forEach((ns, i) => {
      must("ip", "link", "set", veths[i], "netns", ns);
      must("ip", "-n", ns, "link", "set", "lo", "up");
      must("ip", "-n", ns, "addr", "add", `${addresses[i]}/24`, "dev", veths[i]);
      must("ip", "-n", ns, "link", "set", veths[i], "up");
    });
    // The certificates, as an operator makes them for a test farm.
    const certs = join(this.dir, "certs");
    const made = await denovisor([
      "migration-certs",
      certs,
      ...names.map((name, i) => `${name}=${addresses[i]}`),
    ]);
    assert.equal(made.code, 0, made.stderr);
    // The shared storage: a mount point both daemons see at the same path.
    await Deno.mkdir(this.shared);
    must("mount", "--bind", this.shared, this.shared);
    this.#mounted = true;
    for (const [i, name] of names.entries()) {
      const state = join(this.dir, name);
      await Deno.mkdir(state);
      const cert = join(certs, `${name}.pem`);
      const key = join(certs, `${name}.key`);
      const daemon = await MigrationDaemon.start(
        state,
        [
          ...["--migration-listen", `${addresses[i]}:{port}`],
          ...["--migration-cert", cert, "--migration-key", key],
          ...["--migration-ca", join(certs, "ca.pem")],
        ],
        {},
        { port: MIGRATION_PORT, prefix: await inNamespace(nss[i], join(this.dir, `cg-${i}`)) },
      );
      this.hosts.push({
        name,
        ns: nss[i],
        address: addresses[i],
        veth: veths[i],
        dir: state,
        cert,
        key,
        daemon,
      });
      if (pools[i]) {
        await daemon.client.post("/v1/pools", {
          name: "shared",
          type: "shared",
          path: this.shared,
        });
        await daemon.client.post("/v1/pools/shared/start");
      }
    }
  }

  /** A bridge named `name` in a host's namespace, up, without IPv6 chatter. */
  bridge(host: MigrationHost, name: string): void {
    must("ip", "-n", host.ns, "link", "add", name, "type", "bridge");
    run("ip", "netns", "exec", host.ns, "sysctl", "-qw", `net.ipv6.conf.${name}.disable_ipv6=1`);
    must("ip", "-n", host.ns, "link", "set", name, "up");
  }

  /** Runs tests/fixtures/netns_frames.ts in a host's namespace (the host side of a NIC). */
  async frames(host: MigrationHost, args: string[]): Promise<{ code: number; stdout: string }> {
    const { code, stdout, stderr } = await new Deno.Command("nsenter", {
      args: [`--net=/run/netns/${host.ns}`, Deno.execPath(), "run", "-A", FRAMES, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return { code, stdout: decoder.decode(stdout) + decoder.decode(stderr) };
  }

  /** Makes a CA of its own and certificates for both hosts' names and addresses under it. */
  async otherCa(): Promise<string> {
    const certs = join(this.dir, "other-ca");
    const made = await denovisor([
      "migration-certs",
      certs,
      ...this.hosts.map((host) => `${host.name}=${host.address}`),
    ]);
    assert.equal(made.code, 0, made.stderr);
    return certs;
  }

  /** Makes a raw volume in the shared pool (through host a) and shows it to host b. */
  async volume(name: string, size = "1M"): Promise<string> {
    const info = await this.a.daemon.client.post<{ path: string }>(
      "/v1/pools/shared/volumes",
      { name, size, format: "raw" },
    );
    await this.b.daemon.client.post("/v1/pools/shared/refresh").catch(() => {});
    return info.path;
  }

  /** Cuts (false) or restores (true) the link, from host a's end. */
  link(up: boolean): void {
    must("ip", "-n", this.a.ns, "link", "set", this.a.veth, up ? "up" : "down");
  }

  /**
   * Restarts host i's daemon after a crash (same flags, same namespace); `certs` names
   * another directory of `migration-certs` (another CA) to take its certificate and key
   * from, `ca` the CA it trusts (by default the one of `certs`).
   */
  async restart(
    i: number,
    certs = join(this.dir, "certs"),
    ca = join(certs, "ca.pem"),
  ): Promise<MigrationDaemon> {
    const host = this.hosts[i];
    host.daemon = await MigrationDaemon.start(
      host.dir,
      [
        ...["--migration-listen", `${host.address}:{port}`],
        ...["--migration-cert", join(certs, `${host.name}.pem`)],
        ...["--migration-key", join(certs, `${host.name}.key`)],
        ...["--migration-ca", ca],
      ],
      {},
      { port: MIGRATION_PORT, prefix: await inNamespace(host.ns, join(this.dir, `cg-${i}`)) },
    );
    return host.daemon;
  }

  /** The hosts where `domain` runs (or is paused), by name. */
  async runningOn(domain: string): Promise<string[]> {
    const where: string[] = [];
    for (const host of this.hosts) {
      const info = await host.daemon.client.get<DomainInfo>(`/v1/domains/${domain}`).catch(
        () => null,
      );
      if (info && info.state !== "shutoff") where.push(`${host.name}:${info.state}`);
    }
    return where;
  }

  /** The VMM processes alive under host i's state directory. */
  vmms(i: number): number[] {
    return vmmPids(this.hosts[i].dir).filter((pid) => {
      try {
        return !Deno.readTextFileSync(`/proc/${pid}/stat`).includes(") Z ");
      } catch {
        return false;
      }
    });
  }

  async stop(): Promise<void> {
    for (const host of this.hosts) await host.daemon.stop().catch(() => "");
    await sleep(100);
    if (this.#mounted) run("umount", "-l", this.shared);
    const nss = [0, 1].map((i) => `dvmig${ID}h${i}`);
    for (const ns of nss) run("ip", "netns", "del", ns);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
