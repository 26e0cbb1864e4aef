/**
 * The frame that announces a guest on a new host after a live migration: a broadcast
 * RARP request (ethertype 0x8035, opcode 3) from the guest's MAC, as QEMU's
 * `qemu_announce_self` sends it. Switches and bridges learn the MAC on the new port from
 * its source address; nothing needs to answer it. Guests that can announce themselves
 * (virtio-net GUEST_ANNOUNCE, which this VMM does not offer) send gratuitous ARPs instead.
 *
 * @module
 */

/** RARP's ethertype. */
export const ETHERTYPE_RARP = 0x8035;
/** RARP "request reverse". */
const RARP_REQUEST = 3;
/** Minimum Ethernet frame without its FCS: the RARP payload is padded to it. */
const MIN_FRAME = 60;

/** The RARP announcement of `mac` (6 bytes), 60 bytes long. */
export function rarpAnnouncement(mac: Uint8Array): Uint8Array {
  if (mac.length !== 6) throw new RangeError(`A MAC address is 6 bytes, not ${mac.length}`);
  const frame = new Uint8Array(MIN_FRAME);
  const view = new DataView(frame.buffer);
  frame.fill(0xff, 0, 6); // broadcast
  frame.set(mac, 6);
  view.setUint16(12, ETHERTYPE_RARP);
  view.setUint16(14, 1); // hardware: Ethernet
  view.setUint16(16, 0x0800); // protocol: IPv4
  frame[18] = 6; // hardware address length
  frame[19] = 4; // protocol address length
  view.setUint16(20, RARP_REQUEST);
  frame.set(mac, 22); // sender hardware address; sender IP 0.0.0.0
  frame.set(mac, 32); // target hardware address; target IP 0.0.0.0
  return frame;
}

/** When to announce after the guest runs (ms), as QEMU does by default (50 ms apart, growing). */
export const ANNOUNCE_DELAYS_MS: readonly number[] = [0, 50, 200, 500];
