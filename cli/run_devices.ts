/**
 * Turns `denovisor run`'s device options into virtio devices: opens disk images and taps,
 * builds rate limiters, and closes whatever was opened if a later device fails.
 *
 * @module
 */

import type { VirtioAttachment } from "../core/virtio_wiring.ts";
import type { ConsoleOutput } from "../devices/console/console.ts";
import { Tap } from "../devices/net/tap.ts";
import { VirtioBalloon } from "../devices/virtio/balloon.ts";
import { VirtioBlock } from "../devices/virtio/block.ts";
import { VirtioConsole } from "../devices/virtio/console.ts";
import { VirtioNet } from "../devices/virtio/net.ts";
import { RateLimiter, type RateLimiterConfig } from "../devices/virtio/rate_limiter.ts";
import { VirtioRng } from "../devices/virtio/rng.ts";
import { openImage } from "../storage/image.ts";
import type { DiskSpec, NicSpec, Transport } from "./device_specs.ts";

/** The virtio devices `run` was asked for. */
export interface RunDeviceOptions {
  disks: DiskSpec[];
  nics: NicSpec[];
  rng?: { transport: Transport; rateLimit?: RateLimiterConfig };
  balloon?: { transport: Transport };
  virtioConsole?: { transport: Transport };
}

/** The built devices, and the virtio console when there is one (it takes console input). */
export interface RunDevices {
  attachments: VirtioAttachment[];
  virtioConsole?: VirtioConsole;
  balloon?: VirtioBalloon;
}

const limiter = (config?: RateLimiterConfig) => config && new RateLimiter(config);

/** Disk names as Linux will call them, for logs: vda, vdb... */
const diskName = (index: number) => `vd${String.fromCharCode(0x61 + index)}`;

/** Opens every device; on failure closes the ones already opened and rethrows. */
export function buildRunDevices(
  options: RunDeviceOptions,
  context: { memoryBytes: number; console: ConsoleOutput },
): RunDevices {
  const built: RunDevices = { attachments: [] };
  const add = (device: VirtioAttachment["device"], transport: Transport) =>
    built.attachments.push({ device, transport });
  try {
    options.disks.forEach((spec, index) => {
      const disk = openImage(spec.path, { readOnly: spec.readOnly, format: spec.format });
      try {
        add(
          new VirtioBlock({
            disk,
            name: diskName(index),
            serial: spec.serial,
            rateLimiter: limiter(spec.rateLimit),
          }),
          spec.transport,
        );
      } catch (error) {
        disk.close();
        throw error;
      }
    });
    for (const spec of options.nics) {
      const tap = Tap.open({
        name: spec.tap,
        create: spec.tap === "auto" || !tapExists(spec.tap),
        bridge: spec.bridge,
        vnetHeader: true,
      });
      try {
        // One limit per direction, as Firecracker's rx and tx rate limiters.
        const net = new VirtioNet({
          tap,
          mac: spec.mac,
          rxRateLimiter: limiter(spec.rateLimit),
          txRateLimiter: limiter(spec.rateLimit),
        });
        add(net, spec.transport);
      } catch (error) {
        tap.close();
        throw error;
      }
    }
    if (options.rng) {
      add(new VirtioRng({ rateLimiter: limiter(options.rng.rateLimit) }), options.rng.transport);
    }
    if (options.balloon) {
      built.balloon = new VirtioBalloon({ memorySize: context.memoryBytes });
      add(built.balloon, options.balloon.transport);
    }
    if (options.virtioConsole) {
      built.virtioConsole = new VirtioConsole({ output: context.console });
      add(built.virtioConsole, options.virtioConsole.transport);
    }
  } catch (error) {
    built.attachments.forEach(({ device }) => device.close?.());
    throw error;
  }
  return built;
}

/** Whether a network interface called `name` exists (then `run` attaches to it). */
function tapExists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}
