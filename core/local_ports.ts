/**
 * The port-I/O devices that each vCPU thread serves itself, without a hand-off to the
 * main thread: they are hot (Linux writes port 0x80 as an I/O delay) or end the VM, and
 * they keep no state that vCPUs would have to share.
 *
 * @module
 */

import { Bus } from "./bus.ts";
import { DEBUG_EXIT_PORT, POST_CODE_PORT } from "./layout.ts";
import type { VmEndReason } from "./vm_end.ts";
import type { BusDevice } from "../devices/bus_device.ts";

/** The debug-exit port's width (QEMU's isa-debug-exit default iosize). */
const DEBUG_EXIT_WIDTH = 4;

/** A bus with the POST-code port and the debug-exit port for one vCPU thread. */
export function localPortBus(onEnd: (reason: VmEndReason) => void): Bus {
  const bus = new Bus();
  const postCode: BusDevice = {
    read: (_offset, data) => data.fill(0xff),
    write: () => {},
  };
  const debugExit: BusDevice = {
    read: (_offset, data) => data.fill(0xff),
    write: (_offset, data) => onEnd({ kind: "debugExit", status: data[0] }),
  };
  bus.insert(POST_CODE_PORT, 1, "post-code", postCode);
  bus.insert(DEBUG_EXIT_PORT, DEBUG_EXIT_WIDTH, "debug-exit", debugExit);
  return bus;
}
