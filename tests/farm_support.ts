/**
 * Several `denovisor daemon --farm` processes against one test etcd, on one machine:
 * each with its own state directory, socket and host name, and a stand-in VMM
 * (tests/fixtures/farm_vmm.ts) so that the farm logic (ownership, placement, HA,
 * evacuation) is tested without KVM. Clean-up kills the daemons and their VMMs.
 *
 * @module
 */

import { ApiClient } from "../manager/api_client.ts";
import type { DomainDefinition } from "../manager/api_types.ts";
import { type CliResult, denovisor } from "./cli_support.ts";
import { TestEtcd, TestEtcdCluster } from "./etcd_support.ts";
import { vmmPids } from "./daemon_support.ts";

/** The etcd of a test farm: one member, or a cluster (its URLs comma-separated). */
interface FarmEtcd {
  url: string;
  stop(): Promise<void>;
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const FAKE_VMM = new URL("./fixtures/farm_vmm.ts", import.meta.url).pathname;

/** A small domain for farm tests (the stand-in VMM never boots it). */
export function farmDomain(name: string, extra: Partial<DomainDefinition> = {}): DomainDefinition {
  return { name, boot: { demo: true }, memory: 64, vcpus: 1, ...extra };
}

/** Runs `denovisor ...args --socket socket`: the CLI against one farm daemon. */
export function farmCli(socket: string, ...args: string[]): Promise<CliResult> {
  return denovisor([...args, "--socket", socket]);
}

/** Polls `test` every 100 ms until it returns a value other than undefined or false. */
export async function eventually<T>(
  what: string,
  test: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await test();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s${lastError ? ` (${lastError})` : ""}`);
}

/**
 * `error` with the last lines of each daemon's output appended, for a farm test that
 * failed: a farm failure is a timing between daemons, which only their logs explain. The
 * daemons are killed (their output ends with them).
 */
export async function withDaemonLogs(error: unknown, daemons: FarmDaemon[]): Promise<Error> {
  const failure = error instanceof Error ? error : new Error(String(error));
  for (const daemon of daemons) {
    if (daemon.child === undefined) continue;
    const lines = (await daemon.kill()).trimEnd().split("\n").slice(-40);
    failure.message += `\n--- daemon ${daemon.name}, last ${lines.length} lines ---\n` +
      lines.join("\n");
  }
  return failure;
}

/** Which of `daemons` run `domain`, by asking each (the local view, not etcd's). */
export async function hostsRunning(daemons: FarmDaemon[], domain: string): Promise<string[]> {
  const hosts: string[] = [];
  for (const daemon of daemons) {
    if (daemon.child === undefined) continue;
    try {
      const info = await daemon.client.get<{ state: string; host?: string }>(
        `/v1/domains/${domain}`,
      );
      // A daemon answers for a domain another host runs with that host's name.
      const elsewhere = info.host !== undefined && info.host !== daemon.name;
      if (info.state !== "shutoff" && !elsewhere) hosts.push(daemon.name);
    } catch {
      // Dead daemon or unknown domain.
    }
  }
  return hosts;
}

/** One farm daemon. */
export class FarmDaemon {
  readonly name: string;
  readonly dir: string;
  readonly socket: string;
  readonly args: string[];
  child?: Deno.ChildProcess;
  output: Promise<string> = Promise.resolve("");
  #client?: ApiClient;

  /** A command the daemon runs under, e.g. ["ip", "netns", "exec", "ns1"]. */
  readonly prefix: string[];

  constructor(name: string, dir: string, args: string[], prefix: string[] = []) {
    this.name = name;
    this.dir = dir;
    this.socket = `${dir}/api.sock`;
    this.args = args;
    this.prefix = prefix;
  }

  get client(): ApiClient {
    this.#client ??= new ApiClient(this.socket);
    return this.#client;
  }

  /** Starts (or restarts) the daemon; resolves once it has joined the farm. */
  async start(): Promise<void> {
    this.#client?.close();
    this.#client = undefined;
    const argv = [
      ...this.prefix,
      Deno.execPath(),
      ...["run", "--allow-all", "--no-prompt", MAIN, "daemon", ...this.args],
    ];
    this.child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { DENOVISOR_VMM_COMMAND: JSON.stringify([Deno.execPath(), "run", "-A", FAKE_VMM]) },
    }).spawn();
    const child = this.child;
    this.output = Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
    ])
      .then(([out, err]) => out + err);
    await eventually(`daemon ${this.name} joins the farm`, async () => {
      const hosts = await this.client.get<{ name: string }[]>("/v1/farm/hosts");
      return hosts.some((h) => h.name === this.name);
    }, 60_000).catch(async (error) => {
      throw new Error(`${error.message}\n${await this.kill()}`);
    });
  }

  /** Kills the daemon (not its VMMs); resolves with its output. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<string> {
    this.#client?.close();
    this.#client = undefined;
    try {
      this.child?.kill(signal);
    } catch {
      // Already gone.
    }
    await this.child?.status;
    return await this.output;
  }

  /**
   * Kills the VMMs this daemon started (a dead host's guests die with it), by the host
   * pids in their run records: a jailed VMM's own vmm.pid holds its pid inside its PID
   * namespace, which names some other process out here.
   */
  killVmms(): Promise<void> {
    for (const pid of vmmPids(this.dir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    return Promise.resolve();
  }
}

/**
 * A TCP relay between one daemon and etcd, to cut that host off (a partition) and
 * reconnect it without touching the other hosts.
 */
export class EtcdRelay {
  readonly url: string;
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #open = new Set<Deno.Conn>();
  #cut = false;

  constructor(target: string) {
    const url = new URL(target);
    this.#target = { hostname: url.hostname, port: Number(url.port) };
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.url = `http://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
    this.#accept();
  }

  /** Drops every connection and refuses new ones until `heal`. */
  cut(): void {
    this.#cut = true;
    for (const conn of [...this.#open]) this.#close(conn);
  }

  heal(): void {
    this.#cut = false;
  }

  close(): void {
    this.cut();
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#cut) {
          this.#close(conn);
          continue;
        }
        Deno.connect(this.#target).then((upstream) => {
          this.#open.add(conn);
          this.#open.add(upstream);
          const done = () => {
            this.#close(conn);
            this.#close(upstream);
          };
          conn.readable.pipeTo(upstream.writable).catch(() => {}).finally(done);
          upstream.readable.pipeTo(conn.writable).catch(() => {}).finally(done);
        }, () => this.#close(conn));
      }
    } catch {
      // The listener was closed.
    }
  }

  #close(conn: Deno.Conn): void {
    this.#open.delete(conn);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** An etcd and a few farm daemons. */
export class TestFarm {
  readonly etcd: FarmEtcd;
  /** The cluster, when started with `members: 3`. */
  cluster?: TestEtcdCluster;
  readonly daemons: FarmDaemon[] = [];
  /** The relays of the hosts started with `relay: true`, by host. */
  readonly relays = new Map<string, EtcdRelay>();
  readonly farm = "test";

  private constructor(etcd: FarmEtcd) {
    this.etcd = etcd;
  }

  static async start(
    hosts: {
      name: string;
      memory?: string;
      vcpus?: number;
      labels?: string[];
      relay?: boolean;
      /** More daemon flags (e.g. --migration-listen). */
      args?: string[];
    }[],
    /** `issueFlags`: join with `--etcd URL --host NAME` alone (the default farm). */
    options: { ttl?: number; members?: number; issueFlags?: boolean } = {},
  ): Promise<TestFarm> {
    let cluster: TestEtcdCluster | undefined;
    let etcd: FarmEtcd;
    if ((options.members ?? 1) > 1) {
      cluster = await TestEtcdCluster.start(options.members);
      etcd = { url: cluster.urls.join(","), stop: () => cluster!.stop() };
    } else {
      etcd = await TestEtcd.start();
    }
    const farm = new TestFarm(etcd);
    farm.cluster = cluster;
    try {
      for (const host of hosts) {
        const dir = await Deno.makeTempDir({ prefix: `denovisor-farm-${host.name}-` });
        let etcdUrl = farm.etcd.url;
        if (host.relay) {
          const relay = new EtcdRelay(etcdUrl);
          farm.relays.set(host.name, relay);
          etcdUrl = relay.url;
        }
        const daemon = new FarmDaemon(host.name, dir, [
          "--state-dir",
          dir,
          "--socket",
          `${dir}/api.sock`,
          ...(options.issueFlags ? [] : ["--farm", farm.farm]),
          "--etcd",
          etcdUrl,
          options.issueFlags ? "--host" : "--host-name",
          host.name,
          "--host-memory",
          host.memory ?? "1G",
          "--host-vcpus",
          String(host.vcpus ?? 8),
          "--farm-lease-ttl",
          String(options.ttl ?? 5),
          ...(host.labels ?? []).flatMap((l) => ["--host-label", l]),
          ...host.args ?? [],
        ]);
        farm.daemons.push(daemon);
      }
      await Promise.all(farm.daemons.map((d) => d.start()));
    } catch (error) {
      await farm.stop();
      throw error;
    }
    return farm;
  }

  daemon(name: string): FarmDaemon {
    return this.daemons.find((d) => d.name === name)!;
  }

  /** Which hosts run `domain`, by asking each daemon (the local view, not etcd's). */
  runningOn(domain: string): Promise<string[]> {
    return hostsRunning(this.daemons, domain);
  }

  async stop(): Promise<void> {
    for (const daemon of this.daemons) {
      await daemon.kill();
      await daemon.killVmms();
      await Deno.remove(daemon.dir, { recursive: true }).catch(() => {});
    }
    for (const relay of this.relays.values()) relay.close();
    await this.etcd.stop();
  }
}
