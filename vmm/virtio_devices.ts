/**
 * Opens the virtio devices of a device plan: disk images, taps, rate limiters, and the
 * device objects around them; whatever was opened is closed again if a later device
 * fails. Opening is the part of a build that touches host resources (locks, taps), so it
 * comes first, before any VM exists, as a restore will also need.
 *
 * @module
 */

import type { ConsoleOutput } from "../devices/console/console.ts";
import { Tap } from "../devices/net/tap.ts";
import { VirtioBalloon } from "../devices/virtio/balloon.ts";
import { VirtioBlock } from "../devices/virtio/block.ts";
import { VirtioConsole } from "../devices/virtio/console.ts";
import { VirtioNet } from "../devices/virtio/net.ts";
import { RateLimiter, type RateLimiterConfig } from "../devices/virtio/rate_limiter.ts";
import { VirtioRng } from "../devices/virtio/rng.ts";
import type { VirtioDevice } from "../devices/virtio/virtio_device.ts";
import { openImage } from "../storage/image.ts";
import type { VirtioDevicePlan } from "./device_plan.ts";

/** A planned virtio device and the device object built for it. */
export type OpenedVirtioDevice =
  | { kind: "disk"; plan: VirtioDevicePlan; device: VirtioBlock }
  | { kind: "nic"; plan: VirtioDevicePlan; device: VirtioNet }
  | { kind: "rng"; plan: VirtioDevicePlan; device: VirtioRng }
  | { kind: "balloon"; plan: VirtioDevicePlan; device: VirtioBalloon }
  | { kind: "console"; plan: VirtioDevicePlan; device: VirtioConsole };

const limiter = (config?: RateLimiterConfig) => config && new RateLimiter(config);

/** Opens every planned device, in plan order; on failure closes the opened ones and rethrows. */
export function openVirtioDevices(
  plans: readonly VirtioDevicePlan[],
  context: { memoryBytes: number; console: ConsoleOutput },
): OpenedVirtioDevice[] {
  const opened: OpenedVirtioDevice[] = [];
  try {
    for (const plan of plans) opened.push(openOne(plan, context));
  } catch (error) {
    closeVirtioDevices(opened);
    throw error;
  }
  return opened;
}

/** Closes the devices' host resources (images, taps). */
export function closeVirtioDevices(devices: readonly OpenedVirtioDevice[]): void {
  devices.forEach(({ device }) => closeVirtioDevice(device));
}

const closed = new WeakSet<VirtioDevice>();

/**
 * Closes one device, once: a failed build closes its devices from the device manager and
 * again from the builder, and a closed descriptor number may already be someone else's.
 */
export function closeVirtioDevice(device: VirtioDevice): void {
  if (closed.has(device)) return;
  closed.add(device);
  device.close?.();
}

function openOne(
  plan: VirtioDevicePlan,
  context: { memoryBytes: number; console: ConsoleOutput },
): OpenedVirtioDevice {
  switch (plan.kind) {
    case "disk": {
      const spec = plan.disk;
      const disk = openImage(spec.path, { readOnly: spec.readOnly, format: spec.format });
      try {
        const device = new VirtioBlock({
          disk,
          name: plan.id,
          serial: spec.serial,
          rateLimiter: limiter(spec.rateLimit),
        });
        return { kind: "disk", plan, device };
      } catch (error) {
        disk.close();
        throw error;
      }
    }
    case "nic": {
      const spec = plan.nic;
      const tap = Tap.open({
        name: spec.tap,
        create: spec.tap === "auto" || !tapExists(spec.tap),
        bridge: spec.bridge,
        vnetHeader: true,
      });
      try {
        // One limit per direction, as Firecracker's rx and tx rate limiters.
        const device = new VirtioNet({
          tap,
          mac: spec.mac,
          rxRateLimiter: limiter(spec.rateLimit),
          txRateLimiter: limiter(spec.rateLimit),
        });
        return { kind: "nic", plan, device };
      } catch (error) {
        tap.close();
        throw error;
      }
    }
    case "rng":
      return { kind: "rng", plan, device: new VirtioRng({ rateLimiter: limiter(plan.rateLimit) }) };
    case "balloon":
      return {
        kind: "balloon",
        plan,
        device: new VirtioBalloon({ memorySize: context.memoryBytes }),
      };
    case "console":
      return { kind: "console", plan, device: new VirtioConsole({ output: context.console }) };
  }
}

/** Whether a network interface called `name` exists (then the NIC attaches to it). */
function tapExists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}
