/**
 * The VM-level KVM state a save/restore moves: the kvmclock, the in-kernel PIT and the
 * in-kernel interrupt controllers (both 8259 PICs and the IOAPIC). `VmState` is plain
 * JSON (u64 values as strings); `parseVmState` checks an untrusted one field by field
 * and is a pure function, so the validation is tested without KVM. `Vm.save()` and
 * `Vm.restore()` (core/vm.ts) do the ioctls.
 *
 * @module
 */

import { formatU64, parseU64, StateError, StateReader } from "../common/persist.ts";
import {
  IOAPIC_NUM_PINS,
  type IoapicState,
  PIC_FIELDS,
  type PicState,
  PIT_CHANNEL_U8_FIELDS,
  type PitChannelState,
  type PitState,
} from "../ffi/kvm/irqchip_structs.ts";
import type { ClockData } from "../ffi/kvm/vm_structs.ts";

/** Layout versions of `VmState` this build reads. */
export const VM_STATE_VERSIONS = [1] as const;

/** Where KVM's IOAPIC answers; it is fixed at creation and no guest write moves it. */
export const IOAPIC_BASE_ADDRESS = 0xfec00000n;

/** struct kvm_ioapic_state as JSON. */
export interface IoapicStateJson {
  baseAddress: string;
  ioregsel: number;
  id: number;
  irr: number;
  redirtbl: string[];
}

/** The VM-level state of a machine. */
export interface VmState {
  version: 1;
  /**
   * kvmclock at the save, in ns. Restored as is (flags 0), so the guest's clock goes on
   * from where it stopped; `realtime` (host wall-clock ns at the save, when KVM gave it)
   * is kept for a restore that wants to advance the clock by the time spent saved.
   */
  clock: { clock: string; realtime: string | null };
  pit: PitState;
  /** Master, then slave 8259. */
  pics: PicState[];
  ioapic: IoapicStateJson;
}

/** The KVM structs a `VmState` holds, decoded (what `Vm` reads and writes). */
export interface VmStateParts {
  clock: ClockData;
  pit: PitState;
  pics: PicState[];
  ioapic: IoapicState;
}

/** Builds the JSON state from what KVM returned. */
export function vmStateFrom(parts: VmStateParts): VmState {
  const { clock, pit, pics, ioapic } = parts;
  return {
    version: 1,
    clock: {
      clock: formatU64(clock.clock),
      realtime: clock.realtime === undefined ? null : formatU64(clock.realtime),
    },
    pit: { flags: pit.flags, channels: pit.channels.map((c) => ({ ...c })) },
    pics: pics.map((p) => ({ ...p })),
    ioapic: {
      baseAddress: formatU64(ioapic.baseAddress),
      ioregsel: ioapic.ioregsel,
      id: ioapic.id,
      irr: ioapic.irr,
      redirtbl: ioapic.redirtbl.map(formatU64),
    },
  };
}

/**
 * Checks an untrusted VM state and decodes it into KVM structs; throws `StateError`
 * naming the first bad field. The ranges are the values KVM's own emulation can hold,
 * so a state KVM produced always passes.
 */
export function parseVmState(value: unknown, path = "state"): VmStateParts {
  const state = new StateReader(value, path);
  state.version(VM_STATE_VERSIONS);
  const clockReader = state.object("clock");
  const realtime = clockReader.raw("realtime") === null ? undefined : clockReader.u64("realtime");
  // Restored with flags 0: KVM_SET_CLOCK then sets kvmclock to exactly this value.
  const clock: ClockData = { clock: clockReader.u64("clock"), flags: 0, realtime };
  const pics = state.array("pics", 2, (entry, entryPath) => parsePic(entry, entryPath));
  if (pics.length !== 2) {
    throw new StateError(state.fieldPath("pics"), `expected 2 PICs, got ${pics.length}`);
  }
  return {
    clock,
    pit: parsePit(state.object("pit")),
    pics,
    ioapic: parseIoapic(state.object("ioapic")),
  };
}

/** Upper bounds of the PIC fields that are not free bytes (from KVM's i8259.c). */
const PIC_MAX: Partial<Record<typeof PIC_FIELDS[number], number>> = {
  priorityAdd: 7,
  readRegSelect: 1,
  poll: 1,
  specialMask: 1,
  initState: 3,
  autoEoi: 1,
  rotateOnAutoEoi: 1,
  specialFullyNestedMode: 1,
  init4: 1,
};

function parsePic(value: unknown, path: string): PicState {
  const pic = new StateReader(value, path);
  return Object.fromEntries(
    PIC_FIELDS.map((name) => [name, pic.integer(name, 0, PIC_MAX[name] ?? 0xff)]),
  ) as PicState;
}

/** The mode KVM gives a PIT channel no guest has programmed yet. */
const PIT_MODE_UNSET = 0xff;

/** Upper bounds of the PIT channel fields (from KVM's i8254.c). */
const PIT_CHANNEL_MAX: Record<typeof PIT_CHANNEL_U8_FIELDS[number], number> = {
  countLatched: 0xff,
  statusLatched: 1,
  status: 0xff,
  readState: 4,
  writeState: 4,
  writeLatch: 0xff,
  rwMode: 3,
  // 0-5, or 0xff: KVM's "never programmed" (kvm_pit_reset), checked below.
  mode: 0xff,
  bcd: 1,
  gate: 1,
};

function parsePit(pit: StateReader): PitState {
  const channels = pit.array("channels", 3, (entry, entryPath): PitChannelState => {
    const channel = new StateReader(entry, entryPath);
    return {
      // KVM stores a loaded count of 0 as 0x10000.
      count: channel.integer("count", 0, 0x10000),
      latchedCount: channel.integer("latchedCount", 0, 0xffff),
      ...Object.fromEntries(
        PIT_CHANNEL_U8_FIELDS.map((
          name,
        ) => [name, channel.integer(name, 0, PIT_CHANNEL_MAX[name])]),
      ) as Record<typeof PIT_CHANNEL_U8_FIELDS[number], number>,
    };
  });
  channels.forEach((channel, i) => {
    if (channel.mode > 5 && channel.mode !== PIT_MODE_UNSET) {
      throw new StateError(
        `${pit.fieldPath("channels")}[${i}].mode`,
        `expected a PIT mode 0..5 or 255 (never programmed), got ${channel.mode}`,
      );
    }
  });
  if (channels.length !== 3) {
    throw new StateError(pit.fieldPath("channels"), `expected 3 channels, got ${channels.length}`);
  }
  // KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON.
  return { channels, flags: pit.integer("flags", 0, 3) };
}

function parseIoapic(ioapic: StateReader): IoapicState {
  const baseAddress = ioapic.u64("baseAddress");
  if (baseAddress !== IOAPIC_BASE_ADDRESS) {
    throw new StateError(
      ioapic.fieldPath("baseAddress"),
      `KVM's IOAPIC lives at 0x${IOAPIC_BASE_ADDRESS.toString(16)}, not ${formatU64(baseAddress)}`,
    );
  }
  const redirtbl = ioapic.array("redirtbl", IOAPIC_NUM_PINS, parseU64);
  if (redirtbl.length !== IOAPIC_NUM_PINS) {
    throw new StateError(
      ioapic.fieldPath("redirtbl"),
      `expected ${IOAPIC_NUM_PINS} entries, got ${redirtbl.length}`,
    );
  }
  return {
    baseAddress,
    ioregsel: ioapic.integer("ioregsel", 0, 0xff),
    id: ioapic.integer("id", 0, 0xf),
    irr: ioapic.integer("irr", 0, 0xffffff),
    redirtbl,
  };
}
