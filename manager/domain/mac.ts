/**
 * MAC addresses of domain NICs: checking the ones users write and generating stable ones
 * (QEMU/KVM's locally administered 52:54:00 prefix) for the ones they leave out.
 *
 * @module
 */

export { macProblem } from "../../common/validators.ts";

/** The prefix of generated MACs, as QEMU and libvirt use for KVM guests. */
export const GENERATED_MAC_PREFIX = "52:54:00";

/** 32-bit FNV-1a: tiny, synchronous and stable across runs and hosts. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The MAC of NIC `index` of the domain with `uuid`: 52:54:00 plus three bytes hashed from
 * both, so a domain keeps its MACs across redefinitions with the same uuid. Addresses in
 * `taken` (the domain's other NICs) are skipped.
 */
export function generateMac(uuid: string, index: number, taken: ReadonlySet<string> = new Set()) {
  for (let attempt = 0;; attempt++) {
    const hash = fnv1a(`${uuid.toLowerCase()}/${index}/${attempt}`);
    const tail = [hash >>> 16, hash >>> 8, hash].map((byte) =>
      (byte & 0xff).toString(16).padStart(2, "0")
    );
    const mac = `${GENERATED_MAC_PREFIX}:${tail.join(":")}`;
    if (!taken.has(mac)) return mac;
  }
}
