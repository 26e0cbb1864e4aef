/**
 * A real `denovisor daemon` for the API tests: a child process on a private state
 * directory and socket, with a client, helpers to wait for states and events, and a
 * clean-up that destroys whatever VMMs the test left running and fails the test when the
 * daemon or a VMM logged an uncaught error.
 *
 * @module
 */

import { ApiClient } from "../manager/api_client.ts";
import type { DomainDefinition, DomainEvent, DomainInfo } from "../manager/api_types.ts";
import { releaseTaps } from "../manager/sandbox/tap_setup.ts";
import { guest } from "./cli_support.ts";
import { logFiles, type LoggedText, uncaughtErrors } from "./log_scan.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A long-running test guest definition (guests/domain.c: ticks until Ctrl-Alt-Del). */
export function domainGuest(name: string, extra: Partial<DomainDefinition> = {}): DomainDefinition {
  return { name, boot: { kernel: guest("domain") }, memory: 32, ...extra };
}

/** One daemon process and its directory. */
export class TestDaemon {
  readonly dir: string;
  readonly socket: string;
  child?: Deno.ChildProcess;
  /** Set by a test that makes the daemon or a VMM fail with an uncaught error on purpose. */
  allowUncaughtErrors = false;
  #client?: ApiClient;
  #output: Promise<string> = Promise.resolve("");
  /** Every daemon process this test started, for the scan at clean-up. */
  readonly #processes: { child: Deno.ChildProcess; output: Promise<string> }[] = [];

  private constructor(dir: string) {
    this.dir = dir;
    this.socket = `${dir}/api.sock`;
  }

  /** Starts a daemon on a new temporary directory. */
  static async start(env: Record<string, string> = {}): Promise<TestDaemon> {
    const daemon = new TestDaemon(await Deno.makeTempDir({ prefix: "denovisor-daemon-test-" }));
    await daemon.restart(env);
    return daemon;
  }

  /** The API client (one per daemon process). */
  get client(): ApiClient {
    this.#client ??= new ApiClient(this.socket);
    return this.#client;
  }

  /** (Re)starts the daemon process on the same directory; resolves once it answers. */
  async restart(env: Record<string, string> = {}): Promise<void> {
    this.#client?.close();
    this.#client = undefined;
    this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--no-prompt",
        MAIN,
        "daemon",
        "--state-dir",
        this.dir,
        "--socket",
        this.socket,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env,
    }).spawn();
    this.#output = collect(this.child);
    this.#processes.push({ child: this.child, output: this.#output });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const probe = new ApiClient(this.socket);
      try {
        await probe.get("/v1/host");
        return;
      } catch {
        await sleep(100);
      } finally {
        probe.close();
      }
    }
    throw new Error(`The daemon did not answer within 60 s:\n${await this.stopAndOutput()}`);
  }

  /** Kills the daemon process with `signal`; resolves with its output once it exited. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<string> {
    this.#client?.close();
    this.#client = undefined;
    try {
      this.child?.kill(signal);
    } catch {
      // Already gone.
    }
    await this.child?.status;
    return await this.#output;
  }

  async stopAndOutput(): Promise<string> {
    return await this.kill("SIGKILL");
  }

  /** Defines and starts `definition`; returns its info. */
  async run(definition: DomainDefinition): Promise<DomainInfo> {
    return await this.client.post<DomainInfo>("/v1/domains?start=1", definition);
  }

  info(name: string): Promise<DomainInfo> {
    return this.client.get<DomainInfo>(`/v1/domains/${name}`);
  }

  /** Polls `name` until `test` holds (or throws after `timeoutMs`). */
  async waitFor(
    name: string,
    test: (info: DomainInfo) => boolean,
    timeoutMs = 30_000,
  ): Promise<DomainInfo> {
    const deadline = Date.now() + timeoutMs;
    let last: DomainInfo | undefined;
    while (Date.now() < deadline) {
      last = await this.info(name);
      if (test(last)) return last;
      await sleep(100);
    }
    throw new Error(
      `Domain ${name} did not reach the expected state; last: ${JSON.stringify(last)}`,
    );
  }

  /** Waits until the domain's log contains `text`. */
  async waitForLog(name: string, text: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let log = "";
    while (Date.now() < deadline) {
      log = await (await this.client.request("GET", `/v1/domains/${name}/logs?lines=1000`)).text();
      if (log.includes(text)) return log;
      await sleep(100);
    }
    throw new Error(`'${text}' never appeared in the log of ${name}:\n${log}`);
  }

  /**
   * Kills the daemon and every VMM it left, and removes the directory. Throws when the
   * daemon's output or a domain's log (where its VMM's stderr goes) holds an uncaught error,
   * unless `allowUncaughtErrors` is set.
   */
  async cleanup(): Promise<void> {
    await this.kill("SIGKILL");
    for (const { child } of this.#processes) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Exited already.
      }
    }
    for (const pid of vmmPids(this.dir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await sleep(200);
    // The taps the daemon made persistent for its jailed VMMs outlive them and it; a
    // killed daemon never removes them, so the test does, or every run leaks a few.
    for (const runDir of domainRunDirs(this.dir)) releaseTaps(runDir);
    const logs: LoggedText[] = [];
    for (const [index, { output }] of this.#processes.entries()) {
      logs.push({ source: `daemon process ${index + 1}`, text: await output });
    }
    logs.push(...await logFiles(`${this.dir}/logs`));
    const found = this.allowUncaughtErrors ? undefined : uncaughtErrors(logs);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    if (found) throw new Error(found);
  }
}

/** The run directories `<dir>/domains/<name>` of the domains a daemon on `dir` ran. */
function domainRunDirs(dir: string): string[] {
  try {
    return [...Deno.readDirSync(`${dir}/domains`)].filter((entry) => entry.isDirectory)
      .map((entry) => `${dir}/domains/${entry.name}`);
  } catch {
    return []; // No run directory.
  }
}

/** The pids in `<dir>/domains/<name>/domain.json` records under `dir`. */
export function vmmPids(dir: string): number[] {
  const pids: number[] = [];
  for (const runDir of domainRunDirs(dir)) {
    try {
      pids.push(JSON.parse(Deno.readTextFileSync(`${runDir}/domain.json`)).pid);
    } catch {
      // No record.
    }
  }
  return pids;
}

/** Whether process `pid` exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Reads /v1/events lines into an array until `close()`. */
export class EventRecorder {
  readonly events: DomainEvent[] = [];
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #done: Promise<void>;

  private constructor(reader: ReadableStreamDefaultReader<Uint8Array>) {
    this.#reader = reader;
    this.#done = this.#pump();
  }

  static async open(client: ApiClient): Promise<EventRecorder> {
    const response = await client.request("GET", "/v1/events");
    return new EventRecorder(response.body!.getReader());
  }

  async #pump(): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          this.events.push(JSON.parse(buffered.slice(0, newline)));
          buffered = buffered.slice(newline + 1);
        }
      }
    } catch {
      // Cancelled.
    }
  }

  /** Waits until an event matching `test` has arrived. */
  async waitFor(test: (event: DomainEvent) => boolean, timeoutMs = 30_000): Promise<DomainEvent> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.events.find(test);
      if (found) return found;
      await sleep(50);
    }
    throw new Error(`No such event; got ${JSON.stringify(this.events)}`);
  }

  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.#done;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function collect(child: Deno.ChildProcess): Promise<string> {
  const [out, err] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  return out + err;
}
