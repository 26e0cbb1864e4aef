/**
 * The port-I/O devices that each vCPU thread serves itself, without a hand-off to the
 * main thread: they are hot (Linux writes port 0x80 as an I/O delay) or end the VM, and
 * they keep no state that vCPUs would have to share. The vCPU Worker's entry module
 * (vcpu_worker_main.ts) hands `localPortBus` to core's worker body.
 *
 * @module
 */

import { Bus } from "../core/bus.ts";
import { DEBUG_EXIT_PORT, POST_CODE_PORT } from "../core/layout.ts";
import type { VmEndReason } from "../core/vm_end.ts";
import { DebugExit } from "../devices/legacy/debug_exit.ts";
import { PostCode } from "../devices/legacy/post_code.ts";

/** The debug-exit port's width (QEMU's isa-debug-exit default iosize). */
const DEBUG_EXIT_WIDTH = 4;

/** A bus with the POST-code port and the debug-exit port for one vCPU thread. */
export function localPortBus(onEnd: (reason: VmEndReason) => void): Bus {
  const bus = new Bus();
  bus.insert(POST_CODE_PORT, 1, "post-code", new PostCode());
  bus.insert(
    DEBUG_EXIT_PORT,
    DEBUG_EXIT_WIDTH,
    "debug-exit",
    new DebugExit({ onExit: (status) => onEnd({ kind: "debugExit", status }) }),
  );
  return bus;
}
