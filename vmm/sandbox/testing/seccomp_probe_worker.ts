/**
 * The probe's Worker: a thread started after the filter, which it inherits. Answers
 * fib(n) for the n it is sent.
 *
 * @module
 */

/// <reference lib="deno.worker" />

function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

self.onmessage = (event: MessageEvent<number>) => self.postMessage(fib(event.data));
