/**
 * A `denovisor daemon` child process with --migration-* flags on a free loopback port,
 * for the migration tests (tests/daemon_migration*_test.ts).
 *
 * @module
 */

import { join } from "node:path";
import { ApiClient } from "../manager/api_client.ts";
import type { DomainInfo } from "../manager/api_types.ts";
import { sleep, vmmPids } from "./daemon_support.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A daemon child process started with migration flags. */
export class MigrationDaemon {
  readonly client: ApiClient;
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<string>;

  private constructor(readonly dir: string, readonly port: number, child: Deno.ChildProcess) {
    this.client = new ApiClient(join(dir, "api.sock"));
    this.#child = child;
    this.#output = new Response(child.stderr).text();
    new Response(child.stdout).text().catch(() => {});
  }

  /**
   * `flags` are the --migration-* flags; `{port}` in them is replaced by `options.port`,
   * or by a free loopback port. `options.prefix` is a command the daemon runs under (a network
   * namespace: tests/migration_netns_support.ts).
   */
  static async start(
    dir: string,
    flags: string[],
    env: Record<string, string> = {},
    options: { port?: number; prefix?: string[] } = {},
  ): Promise<MigrationDaemon> {
    let port = options.port;
    if (port === undefined) {
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      port = (probe.addr as Deno.NetAddr).port;
      probe.close();
    }
    const argv = [...(options.prefix ?? []), Deno.execPath()];
    const child = new Deno.Command(argv[0], {
      args: [
        ...argv.slice(1),
        "run",
        "--allow-all",
        "--no-prompt",
        MAIN,
        "daemon",
        "--state-dir",
        dir,
        "--socket",
        join(dir, "api.sock"),
        ...flags.map((flag) => flag.replace("{port}", String(port))),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env,
    }).spawn();
    const daemon = new MigrationDaemon(dir, port, child);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (await daemon.client.get("/v1/host").then(() => true, () => false)) return daemon;
      await sleep(100);
    }
    throw new Error(`The daemon did not answer within 60 s:\n${await daemon.stop()}`);
  }

  info(name: string): Promise<DomainInfo> {
    return this.client.get<DomainInfo>(`/v1/domains/${name}`);
  }

  /** Waits until `name` is no longer defined here. */
  async gone(name: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.info(name).then(() => false, (e) => e.status === 404)) return;
      await sleep(100);
    }
    throw new Error(`'${name}' is still defined: ${JSON.stringify(await this.info(name))}`);
  }

  /** The domain's log (its console and its VMM's lines). */
  async log(name: string): Promise<string> {
    return await (await this.client.request("GET", `/v1/domains/${name}/logs?lines=1000`)).text();
  }

  /** Kills the daemon only (its VMMs run on, as after a daemon crash); resolves with its stderr. */
  async crash(): Promise<string> {
    this.client.close();
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Gone already.
    }
    await this.#child.status;
    return await this.#output;
  }

  /** Kills the daemon and its VMMs; resolves with its stderr. */
  async stop(): Promise<string> {
    this.client.close();
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Gone already.
    }
    await this.#child.status;
    for (const pid of vmmPids(this.dir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    return await this.#output;
  }
}
