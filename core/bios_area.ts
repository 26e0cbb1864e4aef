/**
 * How a chipset's shadow-RAM controls (the i440FX PAM registers) ask the VMM to change
 * what the guest sees at 0xC0000-0xFFFFF, the option-ROM and BIOS area. The VMM that
 * maps guest memory implements it; the chipset device only calls it.
 *
 * @module
 */

/** Start of the area PAM registers control. */
export const BIOS_AREA_START = 0xc0000;
/** End (exclusive) of the area: 1 MiB. */
export const BIOS_AREA_END = 0x100000;

/**
 * What reads and writes of a range reach: RAM for both ("read-write"), RAM for reads
 * with writes dropped ("read-only", the BIOS locked after POST), RAM for writes with
 * reads from the ROM ("write-only", while firmware copies itself), or neither ("rom":
 * the firmware image, as at power-on).
 */
export type BiosAreaAccess = "rom" | "read-only" | "write-only" | "read-write";

/** Implemented by the VMM: applies a PAM setting to `[start, start + size)`. */
export interface BiosAreaControl {
  setAccess(start: number, size: number, access: BiosAreaAccess): void;
}
