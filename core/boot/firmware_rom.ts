/**
 * Firmware boot (SeaBIOS and other PC BIOS images): the image is mapped at the top of
 * 4 GiB, where the CPU's reset vector (0xFFFFFFF0) points, and its last 128 KiB are also
 * copied into RAM at 0xE0000-0xFFFFF, where real-mode code runs it and where the chipset
 * would shadow it. A vCPU left in KVM's reset state then starts the firmware; no boot
 * protocol, page tables or boot parameters are involved.
 *
 * @module
 */

import { HostMapping } from "../../ffi/mman.ts";
import { KVM_MEM_READONLY } from "../../ffi/kvm/vm_structs.ts";
import { DenovisorError } from "../../common/errors.ts";
import type { GuestMemory } from "../guest_memory.ts";
import { KVM_TSS_ADDRESS } from "../layout.ts";
import type { Vm } from "../vm.ts";

/** Firmware images are whole 64 KiB blocks (flash sectors). */
export const FIRMWARE_ALIGNMENT = 0x1_0000;
/** Largest image: the space between KVM's TSS pages and 4 GiB (256 KiB, SeaBIOS's big build). */
export const FIRMWARE_MAX_SIZE = 0x1_0000_0000 - (KVM_TSS_ADDRESS + 3 * 0x1000);
/** The legacy BIOS window the image's end is copied into. */
export const LEGACY_BIOS_START = 0xe_0000;
export const LEGACY_BIOS_END = 0x10_0000;
/** KVM memory slot of the image: far above the slots guest RAM uses. */
export const FIRMWARE_SLOT = 32;
/** Debian's SeaBIOS, what `--firmware` without a path boots. */
export const DEFAULT_FIRMWARE = "/usr/share/seabios/bios.bin";

/** A firmware image that cannot be booted. */
export class FirmwareImageError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Refuses an image that is empty, too big, or not whole 64 KiB blocks. */
export function checkFirmwareImage(image: Uint8Array, path: string): void {
  if (image.length === 0) {
    throw new FirmwareImageError(
      `Firmware image ${path} is empty; give a BIOS image such as ${DEFAULT_FIRMWARE}`,
    );
  }
  if (image.length > FIRMWARE_MAX_SIZE) {
    throw new FirmwareImageError(
      `Firmware image ${path} has ${image.length} bytes; at most ${FIRMWARE_MAX_SIZE} fit below 4 GiB`,
    );
  }
  if (image.length % FIRMWARE_ALIGNMENT !== 0) {
    throw new FirmwareImageError(
      `Firmware image ${path} has ${image.length} bytes, not a multiple of 64 KiB; is it a BIOS image?`,
    );
  }
}

/** Where the image's tail goes in RAM: the last `min(size, 128 KiB)` bytes end at 1 MiB. */
export function legacyCopy(image: Uint8Array): { address: number; bytes: Uint8Array } {
  const length = Math.min(image.length, LEGACY_BIOS_END - LEGACY_BIOS_START);
  return { address: LEGACY_BIOS_END - length, bytes: image.subarray(image.length - length) };
}

/**
 * Maps `image` at 4 GiB minus its size as a KVM memory slot and copies its tail into RAM
 * below 1 MiB. Returns the host mapping, which the caller unmaps after the VM is closed.
 * A restore passes `copyToRam: false`: RAM then holds the saved machine's shadow copy,
 * which the firmware has changed since (its variables, what POST relocated there).
 */
export function mapFirmware(
  vm: Vm,
  memory: GuestMemory,
  image: Uint8Array,
  path: string,
  options: { copyToRam?: boolean } = {},
): HostMapping {
  checkFirmwareImage(image, path);
  const tail = legacyCopy(image);
  if (!memory.contains(tail.address, tail.bytes.length)) {
    throw new FirmwareImageError("Guest RAM does not cover 0xE0000-0xFFFFF for the firmware");
  }
  const mapping = HostMapping.anonymous(image.length);
  try {
    mapping.bytes().set(image);
    vm.setUserMemoryRegion({
      slot: FIRMWARE_SLOT,
      // A ROM: writes leave KVM as MMIO and, with nothing there, are dropped.
      flags: KVM_MEM_READONLY,
      guestPhysAddr: 0x1_0000_0000 - image.length,
      memorySize: image.length,
      userspaceAddr: mapping.address,
    });
  } catch (error) {
    mapping.unmap();
    throw error;
  }
  if (options.copyToRam ?? true) memory.write(tail.address, tail.bytes);
  return mapping;
}
