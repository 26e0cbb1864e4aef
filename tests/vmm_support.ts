/**
 * Starts `denovisor vmm` as a child process the way the daemon does (a config file in a
 * run directory, stdio away from any terminal) and gives tests its client, its log and
 * its end.
 *
 * @module
 */

import { join } from "node:path";
import { guest } from "./cli_support.ts";
import type { VmmConfig } from "../vmm/vmm_config.ts";
import { VmmClient } from "../vmm/vmm_client.ts";
import { runFiles } from "../vmm/run_files.ts";
import { uncaughtErrors } from "./log_scan.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A VMM child process and its run directory. */
export interface VmmChild {
  dir: string;
  config: VmmConfig;
  client: VmmClient;
  child: Deno.ChildProcess;
  /** Settles with the exit status and stderr once the process has exited. */
  exited: Promise<{ code: number; signal: Deno.Signal | null; stderr: string }>;
  /** The log file so far. */
  log(): string;
  /** Waits until the log matches `pattern` (after `from` characters); returns the log. */
  waitLog(pattern: RegExp, options?: { from?: number; timeoutMs?: number }): Promise<string>;
  /**
   * Kills the process if it still runs and removes the directory; throws when its stderr or
   * log holds an uncaught error, unless `allowUncaughtErrors` is set.
   */
  cleanup(): Promise<void>;
  /** Set by a test that makes the VMM fail with an uncaught error on purpose. */
  allowUncaughtErrors: boolean;
}

/** A config for the `domain` test guest in `dir`, with `overrides` applied. */
export function domainConfig(dir: string, overrides: Partial<VmmConfig> = {}): VmmConfig {
  return {
    name: "t",
    uuid: "0b6f2a5e-6c1d-4a57-9d43-3f1c2b7a9e10",
    vcpus: 1,
    memoryBytes: 64 * 1024 * 1024,
    boot: { kind: "linux", kernel: guest("domain"), cmdline: "" },
    disks: [],
    nics: [],
    balloon: false,
    onReboot: "destroy",
    logFile: join(dir, "console.log"),
    runDir: dir,
    ...overrides,
  };
}

/** Runs `denovisor vmm --config FILE` with `raw` written as FILE; waits for nothing. */
export function spawnVmm(configPath: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", MAIN, "vmm", "--config", configPath],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    detached: true,
  }).spawn();
}

/** Starts a VMM for `config(dir)` and waits for its pid file. */
export async function startVmm(
  overrides: Partial<VmmConfig> | ((dir: string) => Partial<VmmConfig>) = {},
): Promise<VmmChild> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-vmm-" });
  const config = domainConfig(dir, typeof overrides === "function" ? overrides(dir) : overrides);
  const configPath = join(dir, "config.json");
  await Deno.writeTextFile(configPath, JSON.stringify(config));
  const child = spawnVmm(configPath);
  const exited = (async () => {
    const [status, stderr] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
    ]);
    return { code: status.code, signal: status.signal, stderr };
  })();
  let done = false;
  void exited.then(() => done = true);
  const log = () => {
    try {
      return Deno.readTextFileSync(config.logFile);
    } catch {
      return "";
    }
  };
  const vmm: VmmChild = {
    dir,
    config,
    client: new VmmClient(dir),
    child,
    exited,
    log,
    allowUncaughtErrors: false,
    async waitLog(pattern, options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? 60_000);
      for (;;) {
        const text = log();
        if (pattern.test(text.slice(options.from ?? 0))) return text;
        if (Date.now() > deadline) {
          throw new Error(`Timed out waiting for ${pattern} in the log:\n${text.slice(-2000)}`);
        }
        await delay(50);
      }
    },
    async cleanup() {
      if (!done) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }
      const { stderr } = await exited;
      const found = vmm.allowUncaughtErrors ? undefined : uncaughtErrors([
        { source: "the VMM's stderr", text: stderr },
        { source: config.logFile, text: log() },
      ]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      if (found) throw new Error(found);
    },
  };
  const deadline = Date.now() + 60_000;
  while (!(await exists(runFiles(dir).pidFile))) {
    if (done) {
      const { code, stderr } = await exited;
      await vmm.cleanup();
      throw new Error(`denovisor vmm exited with ${code} before writing vmm.pid: ${stderr}`);
    }
    if (Date.now() > deadline) {
      await vmm.cleanup();
      throw new Error("denovisor vmm did not write vmm.pid within 60 s");
    }
    await delay(50);
  }
  return vmm;
}

/** Runs `body` with a started VMM and always cleans up. */
export async function withVmm(
  overrides: Partial<VmmConfig> | ((dir: string) => Partial<VmmConfig>),
  body: (vmm: VmmChild) => Promise<void>,
): Promise<void> {
  const vmm = await startVmm(overrides);
  try {
    await body(vmm);
  } finally {
    await vmm.cleanup();
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** How many "tick N" heartbeat lines the text holds. */
export function countTicks(text: string): number {
  return text.match(/^tick \d+\r?$/gm)?.length ?? 0;
}
