/**
 * The entry module of every vCPU Worker: core's vCPU thread body (core/vcpu_worker.ts)
 * with the port-I/O devices the thread serves itself (vmm/local_ports.ts). It lives here,
 * not in core, because it names devices.
 *
 * @module
 */

import { serveVcpuWorker } from "../core/vcpu_worker.ts";
import { localPortBus } from "./local_ports.ts";

serveVcpuWorker(localPortBus);
