/**
 * The console client against the VMM's real console hub (vmm/console_hub.ts) behind a
 * stand-in daemon API, no KVM: one running domain "w" whose console is the hub.
 *
 * @module
 */

import { join } from "node:path";
import { ConsoleHub } from "../vmm/console_hub.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A stand-in API serving domain "w", whose console socket is a real ConsoleHub. */
export class StandInConsole {
  readonly dir: string;
  readonly hub: ConsoleHub;
  readonly consoleSocket: string;
  readonly apiSocket: string;
  /** What reached the guest's input so far. */
  typed = "";
  readonly #api: Deno.HttpServer;

  private constructor(dir: string) {
    this.dir = dir;
    this.hub = new ConsoleHub(join(dir, "log"));
    this.hub.setInput((bytes) => this.typed += new TextDecoder().decode(bytes));
    this.consoleSocket = join(dir, "console.sock");
    this.hub.listen(this.consoleSocket);
    this.apiSocket = join(dir, "api.sock");
    const info = {
      name: "w",
      uuid: "00000000-0000-4000-8000-000000000000",
      state: "running",
      consoleSocket: this.consoleSocket,
    };
    this.#api = Deno.serve({ path: this.apiSocket, onListen() {} }, () => Response.json(info));
  }

  /** Starts the hub and the API in a new temporary directory named after `prefix`. */
  static async start(prefix: string): Promise<StandInConsole> {
    return new StandInConsole(await Deno.makeTempDir({ prefix }));
  }

  /** Spawns `denovisor console w ...args` against the stand-in API, all stdio piped. */
  spawnConsole(...args: string[]): Deno.ChildProcess {
    return new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "console", "w", ...args, "--socket", this.apiSocket],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  /** Closes the hub and the API and removes the directory. */
  async close(): Promise<void> {
    await this.hub.close();
    await this.#api.shutdown();
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** Kills `child` unless it has exited, and waits for it. */
export async function reap(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // Exited.
  }
  await child.status;
}

/** Polls `test` every 20 ms; throws naming `what` if it does not hold within `timeoutMs`. */
export async function until(test: () => boolean, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
