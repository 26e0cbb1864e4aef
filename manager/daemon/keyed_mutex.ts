/**
 * One promise-chain mutex per key: calls for the same domain run one after another, in
 * arrival order, while calls for different domains run in parallel.
 *
 * @module
 */

/** Serializes async work per key. */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` once every earlier call for `key` has settled; resolves with its result. */
  run<T>(key: string, fn: () => Promise<T> | T): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(() => fn(), () => fn());
    const tail = result.then(() => {}, () => {});
    this.#tails.set(key, tail);
    // Forget the key once nothing more is queued, so the map does not grow forever.
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Whether anything is running or queued for `key`. */
  busy(key: string): boolean {
    return this.#tails.has(key);
  }
}
