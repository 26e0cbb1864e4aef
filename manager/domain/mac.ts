/**
 * MAC addresses of domain NICs: checking the ones users write and generating stable ones
 * (QEMU/KVM's locally administered 52:54:00 prefix) for the ones they leave out.
 *
 * @module
 */

const MAC_PATTERN = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

/** The prefix of generated MACs, as QEMU and libvirt use for KVM guests. */
export const GENERATED_MAC_PREFIX = "52:54:00";

/** Why `mac` cannot be a NIC's address, or `undefined` when it can. */
export function macProblem(mac: string): string | undefined {
  if (!MAC_PATTERN.test(mac)) {
    return `"${mac}" is not a MAC address; write six hex pairs like 52:54:00:12:34:56`;
  }
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    return `${mac} is a multicast address; use a unicast one (even first byte), e.g. 52:54:00:12:34:56`;
  }
  if (/^(00:){5}00$/.test(mac)) return `${mac} is the zero address; use e.g. 52:54:00:12:34:56`;
  return undefined;
}

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
