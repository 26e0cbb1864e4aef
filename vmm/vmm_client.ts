/**
 * The daemon's (and the tests') side of a VMM: typed calls on its control socket, the
 * console handshake, and the files of its run directory.
 *
 * @module
 */

import { ApiClient } from "../common/http/client.ts";
import type { DomainStats } from "./domain_stats.ts";
import type { VmmEndRecord, VmmStatus } from "./vmm_config.ts";
import { runFiles } from "./run_files.ts";

/** Typed calls on `<runDir>/vmm.sock`; failures are `ApiClientError`s. */
export class VmmClient {
  readonly #api: ApiClient;

  constructor(runDir: string) {
    this.#api = new ApiClient(runFiles(runDir).controlSocket);
  }

  status(): Promise<VmmStatus> {
    return this.#api.get("/vm");
  }
  pause(): Promise<VmmStatus> {
    return this.#api.post("/vm/pause");
  }
  resume(): Promise<VmmStatus> {
    return this.#api.post("/vm/resume");
  }
  /** Ctrl-Alt-Del to the guest; the VM ends when the guest acts on it. */
  shutdown(): Promise<VmmStatus> {
    return this.#api.post("/vm/shutdown");
  }
  /** Hard reset; answers once the rebuilt machine runs. */
  reboot(): Promise<VmmStatus> {
    return this.#api.post("/vm/reboot");
  }

  /** Asks the guest to reboot (Ctrl-Alt-Del); the reset that follows is a reboot. */
  requestReboot(): Promise<VmmStatus> {
    return this.#api.post("/vm/ctrl-alt-del");
  }
  /** Stops the VM now; answers once end.json is written (state "shutoff"). */
  destroy(): Promise<VmmStatus> {
    return this.#api.post("/vm/destroy");
  }
  stats(): Promise<DomainStats> {
    return this.#api.get("/vm/stats");
  }
  /** Sets the balloon size: `targetBytes` of guest RAM given back to the host. */
  setBalloon(targetBytes: number): Promise<VmmStatus> {
    return this.#api.call("PUT", "/vm/balloon", { targetBytes });
  }
}

/** The end record of a VMM that ended, or undefined (still running, or it crashed). */
export async function readEndRecord(runDir: string): Promise<VmmEndRecord | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(runFiles(runDir).endFile));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** An attached console: what was granted, and the connection (after the "ok" line). */
export interface ConsoleAttachment {
  mode: "rw" | "ro";
  conn: Deno.UnixConn;
  /** Bytes that arrived with the answer line (the start of the replay). */
  initial: Uint8Array;
}

/** Connects to `<runDir>/console.sock` asking for `mode`; resolves after the answer line. */
export async function attachConsole(
  runDir: string,
  mode: "rw" | "ro",
): Promise<ConsoleAttachment> {
  const conn = await Deno.connect({ transport: "unix", path: runFiles(runDir).consoleSocket });
  try {
    await conn.write(new TextEncoder().encode(`${mode}\n`));
    let head = new Uint8Array(0);
    const buffer = new Uint8Array(4096);
    for (;;) {
      const newline = head.indexOf(0x0a);
      if (newline >= 0) {
        const line = new TextDecoder().decode(head.subarray(0, newline));
        const match = /^ok (rw|ro)$/.exec(line);
        if (!match) throw new Error(`The console refused the attach: ${line}`);
        return { mode: match[1] as "rw" | "ro", conn, initial: head.slice(newline + 1) };
      }
      const n = await conn.read(buffer);
      if (n === null) throw new Error("The console closed the connection before answering");
      const joined = new Uint8Array(head.length + n);
      joined.set(head);
      joined.set(buffer.subarray(0, n), head.length);
      head = joined;
    }
  } catch (error) {
    conn.close();
    throw error;
  }
}
