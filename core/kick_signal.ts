/**
 * The signal that kicks vCPU threads out of KVM_RUN. The process must have a handler for
 * it (any handler: the point is the EINTR), or the kick would kill the process; Deno
 * installs one when a listener is registered.
 *
 * The listener stays for the life of the process once installed: a kick sent just before
 * a vCPU thread stopped can still be pending, and removing the last listener restores
 * the default action, which would kill the process when it lands.
 *
 * @module
 */

let installed = false;

/** Makes sure the kick signal is handled in this process. */
export function installKickSignalHandler(): void {
  if (installed) return;
  Deno.addSignalListener("SIGUSR2", () => {});
  installed = true;
}
