/**
 * The one copy of each rule for names and identifiers that users write and that cross
 * layers: MAC addresses, Linux interface names, virtio-blk serials, UUIDs and object
 * names (domains, pools, volumes). Each rule answers with the problem in words (or
 * `undefined` when the value is fine), so every edge — the API's JSON paths, the CLI's
 * flags, the VMM config — words the refusal its own way around the same reason.
 *
 * @module
 */

import { DenovisorError } from "./errors.ts";

/** A value that breaks one of these rules, for callers that just throw. */
export class ValidationError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** A MAC for examples in messages: QEMU/KVM's locally administered prefix. */
export const EXAMPLE_MAC = "52:54:00:12:34:56";
const MAC_PATTERN = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

/**
 * Why `mac` cannot be a NIC's address, or `undefined` when it can: six hex pairs,
 * unicast (even first byte: a multicast source address breaks the guest's networking)
 * and not all zeroes.
 */
export function macProblem(mac: string): string | undefined {
  if (!MAC_PATTERN.test(mac)) {
    return `"${mac}" is not a MAC address; write six hex pairs like ${EXAMPLE_MAC}`;
  }
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    return `${mac} is a multicast address; use a unicast one (even first byte), e.g. ${EXAMPLE_MAC}`;
  }
  if (/^(00:){5}00$/.test(mac)) return `${mac} is the zero address; use e.g. ${EXAMPLE_MAC}`;
  return undefined;
}

/** The 6 bytes of a MAC that `macProblem` accepts; throws `ValidationError` otherwise. */
export function parseMac(mac: string): Uint8Array {
  const problem = macProblem(mac);
  if (problem !== undefined) throw new ValidationError(problem);
  return new Uint8Array(mac.split(":").map((pair) => parseInt(pair, 16)));
}

/** Linux interface names are at most 15 bytes (IFNAMSIZ - 1). */
export const MAX_INTERFACE_NAME_LENGTH = 15;
/** The interface name rule in words, for messages. */
export const INTERFACE_NAME_RULE = `1-${MAX_INTERFACE_NAME_LENGTH} letters, digits, '_', '.', '-'`;
const INTERFACE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Whether `name` is a safe Linux interface name (tap or bridge): 1-15 of letters, digits,
 * '_', '.', '-', and not "." or ".." (the kernel refuses those; they are also path parts
 * under /sys/class/net).
 */
export function isInterfaceName(name: string): boolean {
  return INTERFACE_NAME_PATTERN.test(name) && name !== "." && name !== "..";
}

/** A virtio-blk serial (VIRTIO_BLK_T_GET_ID) holds at most 20 bytes. */
export const MAX_DISK_SERIAL_LENGTH = 20;
/** The disk serial rule in words, for messages. */
export const DISK_SERIAL_RULE = `at most ${MAX_DISK_SERIAL_LENGTH} printable ASCII characters`;

/** Whether `serial` fits a virtio-blk serial: at most 20 printable ASCII characters. */
export function isDiskSerial(serial: string): boolean {
  return serial.length <= MAX_DISK_SERIAL_LENGTH && /^[\x20-\x7e]*$/.test(serial);
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `text` is a UUID written as 8-4-4-4-12 hex digits (either case). */
export function isUuid(text: string): boolean {
  return UUID_PATTERN.test(text);
}

/**
 * Domain and pool names: they are also file and directory names under the state and
 * runtime directories, so no '/', no leading '.' or '-', at most 64 characters.
 */
export const OBJECT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The object name rule in words, for messages. */
export const OBJECT_NAME_RULE =
  "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit";

/** Whether `name` is a valid domain or pool name (see `OBJECT_NAME_PATTERN`). */
export function isObjectName(name: string): boolean {
  return OBJECT_NAME_PATTERN.test(name);
}

/** Volume and snapshot names also allow '+' (as image file names often have it). */
export const VOLUME_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
/** The volume name rule in words, for messages. */
export const VOLUME_NAME_RULE =
  "1-64 letters, digits, '.', '_', '+' or '-', not starting with '.' or '-'";

/** Whether `name` is a valid volume or snapshot name (see `VOLUME_NAME_PATTERN`). */
export function isVolumeName(name: string): boolean {
  return VOLUME_NAME_PATTERN.test(name);
}
