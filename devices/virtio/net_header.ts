/**
 * virtio-net feature bits, the mapping between them and the tap's offloads, and the
 * checks on the virtio_net_hdr the driver puts in front of each transmitted frame
 * (virtio 1.2, 5.1.3 and 5.1.6).
 *
 * @module
 */

import { TUN_F, VNET_HEADER_SIZE } from "../net/tap.ts";

/** virtio-net device feature bits (virtio 1.2, 5.1.3). */
export const NET_F = {
  CSUM: 1n << 0n,
  GUEST_CSUM: 1n << 1n,
  MAC: 1n << 5n,
  GUEST_TSO4: 1n << 7n,
  GUEST_TSO6: 1n << 8n,
  GUEST_ECN: 1n << 9n,
  GUEST_UFO: 1n << 10n,
  HOST_TSO4: 1n << 11n,
  HOST_TSO6: 1n << 12n,
  HOST_ECN: 1n << 13n,
  HOST_UFO: 1n << 14n,
  MRG_RXBUF: 1n << 15n,
  STATUS: 1n << 16n,
} as const;

/** virtio_net_hdr flags and gso types. */
export const NET_HDR = {
  F_NEEDS_CSUM: 1,
  GSO_NONE: 0,
  GSO_TCPV4: 1,
  GSO_UDP: 3,
  GSO_TCPV6: 4,
  GSO_ECN: 0x80,
} as const;

/** Offset of num_buffers in the 12-byte header. */
export const NUM_BUFFERS_OFFSET = 10;
/** The header every frame carries on both queues (VERSION_1 always has num_buffers). */
export const NET_HEADER_SIZE = VNET_HEADER_SIZE;
/** Smallest frame the device accepts from the driver: an Ethernet header. */
export const MIN_FRAME = 14;
/** Largest frame: a 64 KiB GSO payload plus Ethernet and VLAN headers. */
export const MAX_FRAME = 65536 + 14 + 4;
/** A full-sized frame without GSO: 1500 MTU + Ethernet + VLAN. */
export const MAX_PLAIN_FRAME = 1500 + 14 + 4;

/** The offload features to offer given the TUN_F flags the tap accepted. */
export function offloadFeatures(tapOffloads: number): bigint {
  if ((tapOffloads & TUN_F.CSUM) === 0) return 0n;
  let features = NET_F.CSUM | NET_F.GUEST_CSUM;
  if (tapOffloads & TUN_F.TSO4) features |= NET_F.GUEST_TSO4 | NET_F.HOST_TSO4;
  if (tapOffloads & TUN_F.TSO6) features |= NET_F.GUEST_TSO6 | NET_F.HOST_TSO6;
  if ((tapOffloads & TUN_F.TSO_ECN) && (tapOffloads & (TUN_F.TSO4 | TUN_F.TSO6))) {
    features |= NET_F.GUEST_ECN | NET_F.HOST_ECN;
  }
  if (tapOffloads & TUN_F.UFO) features |= NET_F.GUEST_UFO | NET_F.HOST_UFO;
  return features;
}

/** The TUN_F flags to set once the driver accepted `features` (what it can receive). */
export function tapOffloadsFor(features: bigint): number {
  if ((features & NET_F.GUEST_CSUM) === 0n) return 0;
  let flags = TUN_F.CSUM;
  if (features & NET_F.GUEST_TSO4) flags |= TUN_F.TSO4;
  if (features & NET_F.GUEST_TSO6) flags |= TUN_F.TSO6;
  if ((features & NET_F.GUEST_ECN) && (flags & (TUN_F.TSO4 | TUN_F.TSO6))) flags |= TUN_F.TSO_ECN;
  if (features & NET_F.GUEST_UFO) flags |= TUN_F.UFO;
  return flags;
}

/** Whether the driver may send frames that need more than a plain-sized buffer. */
export function receivesLargeFrames(features: bigint): boolean {
  return (features & (NET_F.GUEST_TSO4 | NET_F.GUEST_TSO6 | NET_F.GUEST_UFO)) !== 0n;
}

/**
 * Why a transmit header is unacceptable under `features`, or undefined when it is fine.
 * `header` holds the first NET_HEADER_SIZE bytes; `frameLength` excludes the header.
 * The kernel re-checks what it reads, so a guest that rewrites the header after this
 * check only gets its frame refused.
 */
export function txHeaderProblem(
  header: Uint8Array,
  frameLength: number,
  features: bigint,
): string | undefined {
  // Byte reads, not a DataView: this runs once per transmitted frame.
  const flags = header[0];
  const gsoType = header[1];
  const gsoSize = header[4] | (header[5] << 8);
  const csumStart = header[6] | (header[7] << 8);
  const csumOffset = header[8] | (header[9] << 8);
  if (frameLength < MIN_FRAME || frameLength > MAX_FRAME) {
    return `frame of ${frameLength} bytes is outside ${MIN_FRAME}..${MAX_FRAME}`;
  }
  if ((flags & ~NET_HDR.F_NEEDS_CSUM) !== 0) {
    return `flags 0x${flags.toString(16)} are not for transmit`;
  }
  if (flags & NET_HDR.F_NEEDS_CSUM) {
    if ((features & NET_F.CSUM) === 0n) return "checksum offload used but not negotiated";
    if (csumStart + csumOffset + 2 > frameLength) return "checksum position lies past the frame";
  }
  const base = gsoType & ~NET_HDR.GSO_ECN;
  if ((gsoType & NET_HDR.GSO_ECN) && (features & NET_F.HOST_ECN) === 0n) {
    return "GSO ECN used but not negotiated";
  }
  if (base === NET_HDR.GSO_NONE) return undefined;
  const needed = base === NET_HDR.GSO_TCPV4
    ? NET_F.HOST_TSO4
    : base === NET_HDR.GSO_TCPV6
    ? NET_F.HOST_TSO6
    : base === NET_HDR.GSO_UDP
    ? NET_F.HOST_UFO
    : 0n;
  if (needed === 0n) return `unknown GSO type ${gsoType}`;
  if ((features & needed) === 0n) return `GSO type ${gsoType} used but not negotiated`;
  if (gsoSize === 0) return "GSO frame with a zero segment size";
  if ((flags & NET_HDR.F_NEEDS_CSUM) === 0) return "GSO frame without checksum offload";
  return undefined;
}

/** Copies the first `length` bytes spread over `buffers` into `into`; returns bytes copied. */
export function gather(buffers: readonly { bytes: Uint8Array }[], into: Uint8Array): number {
  let copied = 0;
  for (const { bytes } of buffers) {
    if (copied === into.length) break;
    const take = Math.min(bytes.length, into.length - copied);
    // A byte loop: it copies a 12-byte header per frame, where a subarray would allocate.
    for (let i = 0; i < take; i++) into[copied + i] = bytes[i];
    copied += take;
  }
  return copied;
}

/** Writes a little-endian u16 at `offset` of the bytes spread over `buffers`. */
export function scatterU16(
  buffers: readonly { bytes: Uint8Array }[],
  offset: number,
  value: number,
): void {
  const bytes = [value & 0xff, value >> 8];
  let position = 0;
  for (const buffer of buffers) {
    for (let i = 0; i < 2; i++) {
      const at = offset + i - position;
      if (at >= 0 && at < buffer.bytes.length) buffer.bytes[at] = bytes[i];
    }
    position += buffer.bytes.length;
    if (position >= offset + 2) return;
  }
}
