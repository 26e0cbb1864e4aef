/**
 * A test's view of one console connection (vmm/console_hub.ts): what it receives,
 * collected as it arrives, and a wait for a pattern in it.
 *
 * @module
 */

/** Collects what `conn` receives, from its start (after `initial`) until it closes. */
export class ConsoleReader {
  /** Resolves when the connection has closed (or was closed by the test). */
  readonly done: Promise<void>;
  #text = "";

  constructor(conn: Deno.Conn, initial: Uint8Array = new Uint8Array()) {
    this.#text = new TextDecoder().decode(initial);
    const decoder = new TextDecoder();
    this.done = (async () => {
      const buffer = new Uint8Array(4096);
      try {
        for (;;) {
          const n = await conn.read(buffer);
          if (n === null) return;
          this.#text += decoder.decode(buffer.subarray(0, n), { stream: true });
        }
      } catch {
        // Closed by the test.
      }
    })();
  }

  /** Everything received so far. */
  text(): string {
    return this.#text;
  }

  /** Waits until what was received matches `pattern`; throws after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.#text)) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for ${pattern}: ${this.#text}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
