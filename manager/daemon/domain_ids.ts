/**
 * Domain ids, as xl's domid and virsh's Id: a small number given to a domain each time
 * it starts, never given again while the daemon's state directory lives (a restarted
 * daemon goes on counting), and shown while the domain runs. The next id is kept in
 * `<state dir>/next-domain-id`; a running domain's id is kept in its run directory
 * (`domain-id`), so a daemon that takes over a running VMM shows the same id.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../store/atomic_file.ts";

/** The file in a domain's run directory that holds its id. */
const RUN_FILE = "domain-id";

/** Hands out domain ids. */
export class DomainIds {
  readonly #counterFile: string;
  #next: number | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string) {
    this.#counterFile = join(stateDir, "next-domain-id");
  }

  /** A new id for the run in `runDir`, recorded there; ids start at 1. */
  assign(runDir: string): Promise<number> {
    return this.#serialized(async () => {
      const id = await this.#peek();
      this.#next = id + 1;
      await writeFileAtomic(this.#counterFile, `${this.#next}\n`);
      await writeFileAtomic(join(runDir, RUN_FILE), `${id}\n`);
      return id;
    });
  }

  /**
   * The id recorded in `runDir` (a VMM taken over from a previous daemon), or undefined;
   * ids handed out later are above it even if the counter file was lost.
   */
  recall(runDir: string): Promise<number | undefined> {
    return this.#serialized(async () => {
      const id = parseId(await Deno.readTextFile(join(runDir, RUN_FILE)).catch(() => ""));
      if (id === undefined) return undefined;
      if (id >= await this.#peek()) {
        this.#next = id + 1;
        await writeFileAtomic(this.#counterFile, `${this.#next}\n`);
      }
      return id;
    });
  }

  async #peek(): Promise<number> {
    this.#next ??= parseId(await Deno.readTextFile(this.#counterFile).catch(() => "")) ?? 1;
    return this.#next;
  }

  #serialized<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(task, task);
    this.#queue = next.catch(() => {});
    return next;
  }
}

/** A positive whole number from a file's text, or undefined. */
function parseId(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,15}$/.test(trimmed)) return undefined;
  const id = Number(trimmed);
  return id >= 1 ? id : undefined;
}
