/**
 * Logging for offences of a (possibly hostile) guest driver: each kind is logged once,
 * and the number of distinct kinds is capped so a guest cannot flood the log or grow
 * memory by varying the details of its offences.
 *
 * @module
 */

/** Logs each key once, up to `limit` keys. */
export class OnceLog {
  readonly #sink: (message: string) => void;
  readonly #limit: number;
  readonly #seen = new Set<string>();

  constructor(sink: (message: string) => void = (message) => console.warn(message), limit = 32) {
    this.#sink = sink;
    this.#limit = limit;
  }

  /** Logs `message` unless `key` was logged before or the cap was reached. */
  log(key: string, message: string): void {
    if (this.#seen.has(key) || this.#seen.size > this.#limit) return;
    this.#seen.add(key);
    if (this.#seen.size > this.#limit) {
      this.#sink(`${message} (further offences are not logged)`);
      return;
    }
    this.#sink(message);
  }
}
