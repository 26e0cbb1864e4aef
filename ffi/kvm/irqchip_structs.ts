/**
 * Codecs for the state of KVM's in-kernel interrupt controllers and timer, as
 * KVM_GET/SET_IRQCHIP and KVM_GET/SET_PIT2 carry it: struct kvm_pic_state, struct
 * kvm_ioapic_state (inside the 512-byte union of struct kvm_irqchip) and struct
 * kvm_pit_state2 (x86-64 layouts from <asm/kvm.h>; offsets checked against the header by
 * the tests).
 *
 * @module
 */

import { KVM_STRUCT_SIZE } from "./ioctls.ts";

/** The u8 fields of struct kvm_pic_state, in the header's order (16 bytes). */
export const PIC_FIELDS = [
  "lastIrr",
  "irr",
  "imr",
  "isr",
  "priorityAdd",
  "irqBase",
  "readRegSelect",
  "poll",
  "specialMask",
  "initState",
  "autoEoi",
  "rotateOnAutoEoi",
  "specialFullyNestedMode",
  "init4",
  "elcr",
  "elcrMask",
] as const;

/** struct kvm_pic_state: one 8259. */
export type PicState = Record<typeof PIC_FIELDS[number], number>;

/** IOAPIC redirection entries in struct kvm_ioapic_state (KVM_IOAPIC_NUM_PINS). */
export const IOAPIC_NUM_PINS = 24;

/** struct kvm_ioapic_state. */
export interface IoapicState {
  baseAddress: bigint;
  ioregsel: number;
  id: number;
  irr: number;
  /** Redirection table entries, as 64-bit values. */
  redirtbl: bigint[];
}

const IOAPIC_REDIRTBL_OFFSET = 24;

/** The fields of struct kvm_pit_channel_state after `count` (u16, then u8s). */
export const PIT_CHANNEL_U8_FIELDS = [
  "countLatched",
  "statusLatched",
  "status",
  "readState",
  "writeState",
  "writeLatch",
  "rwMode",
  "mode",
  "bcd",
  "gate",
] as const;

/**
 * struct kvm_pit_channel_state without `count_load_time`: that is a host timestamp which
 * KVM_SET_PIT2 overwrites with "now" when it reloads each counter, so it does not travel.
 */
export type PitChannelState =
  & { count: number; latchedCount: number }
  & Record<typeof PIT_CHANNEL_U8_FIELDS[number], number>;

/** struct kvm_pit_state2. */
export interface PitState {
  channels: PitChannelState[];
  /** KVM_PIT_FLAGS_HPET_LEGACY, KVM_PIT_FLAGS_SPEAKER_DATA_ON. */
  flags: number;
}

export const KVM_PIT_FLAGS_HPET_LEGACY = 1;
export const KVM_PIT_FLAGS_SPEAKER_DATA_ON = 2;
const PIT_CHANNELS = 3;
const PIT_CHANNEL_SIZE = 24;
const PIT_FLAGS_OFFSET = PIT_CHANNELS * PIT_CHANNEL_SIZE;

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes a PIC into the 512-byte chip-state union of struct kvm_irqchip. */
export function encodePic(pic: PicState): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.irqchip - 8);
  PIC_FIELDS.forEach((name, i) => bytes[i] = pic[name]);
  return bytes;
}

export function decodePic(bytes: Uint8Array): PicState {
  return Object.fromEntries(PIC_FIELDS.map((name, i) => [name, bytes[i]])) as PicState;
}

/** Encodes an IOAPIC into the 512-byte chip-state union of struct kvm_irqchip. */
export function encodeIoapic(ioapic: IoapicState): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.irqchip - 8);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, ioapic.baseAddress, true);
  view.setUint32(8, ioapic.ioregsel, true);
  view.setUint32(12, ioapic.id, true);
  view.setUint32(16, ioapic.irr, true);
  ioapic.redirtbl.forEach((entry, i) =>
    view.setBigUint64(IOAPIC_REDIRTBL_OFFSET + i * 8, entry, true)
  );
  return bytes;
}

export function decodeIoapic(bytes: Uint8Array): IoapicState {
  const view = viewOf(bytes);
  return {
    baseAddress: view.getBigUint64(0, true),
    ioregsel: view.getUint32(8, true),
    id: view.getUint32(12, true),
    irr: view.getUint32(16, true),
    redirtbl: Array.from(
      { length: IOAPIC_NUM_PINS },
      (_, i) => view.getBigUint64(IOAPIC_REDIRTBL_OFFSET + i * 8, true),
    ),
  };
}

/** Encodes struct kvm_pit_state2 (count_load_time zero: KVM sets it on load). */
export function encodePitState(pit: PitState): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.pitState2);
  const view = new DataView(bytes.buffer);
  pit.channels.forEach((channel, i) => {
    const offset = i * PIT_CHANNEL_SIZE;
    view.setUint32(offset, channel.count, true);
    view.setUint16(offset + 4, channel.latchedCount, true);
    PIT_CHANNEL_U8_FIELDS.forEach((name, j) => view.setUint8(offset + 6 + j, channel[name]));
  });
  view.setUint32(PIT_FLAGS_OFFSET, pit.flags, true);
  return bytes;
}

export function decodePitState(bytes: Uint8Array): PitState {
  const view = viewOf(bytes);
  const channels = Array.from({ length: PIT_CHANNELS }, (_, i) => {
    const offset = i * PIT_CHANNEL_SIZE;
    return {
      count: view.getUint32(offset, true),
      latchedCount: view.getUint16(offset + 4, true),
      ...Object.fromEntries(
        PIT_CHANNEL_U8_FIELDS.map((name, j) => [name, view.getUint8(offset + 6 + j)]),
      ),
    } as PitChannelState;
  });
  return { channels, flags: view.getUint32(PIT_FLAGS_OFFSET, true) };
}
