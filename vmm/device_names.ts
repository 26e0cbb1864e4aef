/**
 * Device ids and names: the one place that says what a device is called. Ids are stable
 * for the life of a domain (stats, logs, the control API and saved machine state key by
 * them); disks and NICs take theirs from the config, or get their Linux-style name by
 * position.
 *
 * @module
 */

/** The 16550 UART on COM1 (ttyS0). */
export const SERIAL_ID = "serial0";
/** The i8042 keyboard controller (Ctrl-Alt-Del, reset). */
export const I8042_ID = "i8042";
/** The CMOS real-time clock. */
export const RTC_ID = "rtc";
/** PCI bus 0: its host bridge and the 0xcf8/0xcfc configuration mechanism. */
export const PCI_HOST_ID = "pci-host";
/** The virtio-rng device. */
export const RNG_ID = "rng0";
/** The virtio-balloon device. */
export const BALLOON_ID = "balloon0";
/** The virtio console. */
export const CONSOLE_ID = "console0";

/** Ids no disk or NIC may take. */
export const FIXED_DEVICE_IDS: readonly string[] = [
  SERIAL_ID,
  I8042_ID,
  RTC_ID,
  PCI_HOST_ID,
  RNG_ID,
  BALLOON_ID,
  CONSOLE_ID,
];

/** A device id: 1-32 letters, digits, '.', '_' or '-', not starting with a symbol. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;

/**
 * The name Linux gives the virtio disk at `index` (0-based): vda..vdz, then vdaa..vdzz,
 * vdaaa... (the bijective base-26 rule of `virtblk_name_format()`, as for sd and xvd).
 */
export function diskName(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new RangeError(`Disk index ${index} is not a whole number from 0`);
  }
  let letters = "";
  let n = index;
  do {
    letters = String.fromCharCode(0x61 + n % 26) + letters;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `vd${letters}`;
}

/** The name of the NIC at `index` (0-based): net0, net1... */
export function nicName(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new RangeError(`NIC index ${index} is not a whole number from 0`);
  }
  return `net${index}`;
}
