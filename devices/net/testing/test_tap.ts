/**
 * Test helpers: a quiet tap with a packet socket on its host side.
 *
 * @module
 */

import { read } from "../../../ffi/fs.ts";
import { Tap } from "../tap.ts";
import { PacketSocket } from "./packet_socket.ts";

let counter = 0;

/** An interface name unique to this process and call. */
export function uniqueInterfaceName(prefix: string): string {
  return `${prefix}${Deno.pid % 100000}x${counter++}`;
}

/** A created tap without IPv6 (whose neighbour discovery would add frames) and drained. */
export function openQuietTap(prefix = "tq"): Tap {
  const tap = Tap.open({ name: uniqueInterfaceName(prefix), create: true, vnetHeader: true });
  try {
    Deno.writeTextFileSync(`/proc/sys/net/ipv6/conf/${tap.name}/disable_ipv6`, "1");
  } catch {
    // No IPv6 on this host: nothing to silence.
  }
  drainTap(tap.fd);
  return tap;
}

/** Reads and discards everything queued on a tap fd. */
export function drainTap(fd: number): void {
  const buffer = new Uint8Array(65600);
  while (read(fd, buffer) > 0) { /* discard */ }
}

/** A test Ethernet frame: broadcast, ethertype 0x88b5 (local experimental), `tag` then a pattern. */
export function testFrame(length: number, tag: number): Uint8Array {
  const frame = new Uint8Array(length);
  frame.fill(0xff, 0, 6);
  frame.set([0x02, 0, 0, 0, 0, 0x42], 6);
  frame.set([0x88, 0xb5], 12);
  for (let i = 14; i < length; i++) frame[i] = (i * 7 + tag) & 0xff;
  frame[14] = tag & 0xff;
  return frame;
}

/** Whether `frame` is a test frame (ethertype 0x88b5). */
export function isTestFrame(frame: Uint8Array): boolean {
  return frame.length >= 14 && frame[12] === 0x88 && frame[13] === 0xb5;
}

export { PacketSocket };
