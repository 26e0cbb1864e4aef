/**
 * The signal that kicks vCPU threads out of KVM_RUN. The process must have a handler for
 * it (any handler: the point is the EINTR), or the kick would kill the process; Deno
 * installs one when a listener is registered. Counted, so several machines can share it.
 *
 * @module
 */

const noop = () => {};
let users = 0;

export const kickSignal = {
  acquire(): void {
    if (users++ === 0) Deno.addSignalListener("SIGUSR2", noop);
  },
  release(): void {
    if (users > 0 && --users === 0) Deno.removeSignalListener("SIGUSR2", noop);
  },
};
