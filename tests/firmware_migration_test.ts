/**
 * Live migration of firmware-booted machines. KVM's dirty log over the slots PAM makes of
 * the low RAM (core/bios_shadow.ts, core/dirty_log.ts): a slot a PAM write re-registers
 * while logging is on is logged again, and its pages count as dirty since KVM dropped its
 * log; the ROM's slot is no RAM. Then SeaBIOS, migrated in-process while it runs its POST
 * (as tests/machine_migration_test.ts migrates a kernel), boots the test boot sector
 * (tests/firmware_support.ts) on the destination: it prints there, finds the F segment
 * read-only and exits with status 7.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { TextSink } from "./text_sink.ts";
import { SECTOR_ONE, withImages } from "./firmware_support.ts";
import { Kvm } from "../core/kvm.ts";
import { GuestRam } from "../core/memory.ts";
import { BiosShadow } from "../core/bios_shadow.ts";
import { DEFAULT_FIRMWARE, mapFirmware } from "../core/boot/firmware_rom.ts";
import { dirtyRuns, KvmDirtyLog, type RangeBitmap } from "../core/dirty_log.ts";
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY } from "../ffi/kvm/vm_structs.ts";
import { build, loadBootImage } from "../vmm/builder.ts";
import type { Machine } from "../vmm/machine.ts";
import type { VmmMachineConfig } from "../vmm/vmm_config.ts";
import { DEFAULT_CONVERGENCE } from "../vmm/migration/convergence.ts";
import { MachineMigrationSource } from "../vmm/migration/machine_source.ts";
import { MachineMigrationTarget } from "../vmm/migration/machine_target.ts";
import { receiveMigration } from "../vmm/migration/receiver.ts";
import { sendMigration } from "../vmm/migration/sender.ts";
import { link } from "../vmm/migration/testing/fakes.ts";
import { configDisks, diskClaim } from "../vmm/migration/disk_claims.ts";

const MIB = 1024 * 1024;

function dirtyPages(bitmaps: RangeBitmap[]): string[] {
  return bitmaps.flatMap((bitmap) =>
    [...dirtyRuns(bitmap, 1 << 20)].map(([first, count]) =>
      `${(bitmap.start + first * 4096).toString(16)}+${count}`
    )
  );
}

kvmTest("KVM's dirty log follows the slots PAM re-registers, and skips the ROM", async () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  using ram = GuestRam.allocate(vm, [{ start: 0, size: 4 * MIB }]);
  const rom = mapFirmware(vm, ram.memory, await Deno.readFile(DEFAULT_FIRMWARE), DEFAULT_FIRMWARE);
  try {
    const shadow = new BiosShadow(vm, {
      slot: 0,
      ram: ram.ranges[0],
      memory: ram.memory,
      rom: { address: rom.address, size: rom.size },
    });
    const log = new KvmDirtyLog(vm, ram.ranges);
    const logged = () =>
      [...vm.memorySlots.values()]
        .filter((s) => (s.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0)
        .map((s) => s.guestPhysAddr.toString(16));
    assert.deepEqual(logged(), []);
    log.start();
    // Every RAM slot: [0, 0xC0000), the 13 PAM ranges, RAM above 1 MiB; not the ROM.
    assert.equal(logged().length, 15, logged().join(" "));
    assert.deepEqual(dirtyPages(log.fetch()), [], "no vCPU ran: nothing written");

    // The BIOS locks its F segment (a read-only slot, not logged), then a PAM write opens
    // it again: a new slot, logged; KVM dropped the old ones' logs, so its pages are dirty.
    shadow.setAccess(0xf_0000, 0x1_0000, "read-only");
    const fSegment = () => [...vm.memorySlots.values()].find((s) => s.guestPhysAddr === 0xf_0000)!;
    assert.equal(fSegment().flags, KVM_MEM_READONLY);
    assert.deepEqual(dirtyPages(log.fetch()), ["f0000+16"]);
    assert.deepEqual(dirtyPages(log.fetch()), [], "taken once");
    shadow.setAccess(0xf_0000, 0x1_0000, "read-write");
    assert.equal(fSegment().flags, KVM_MEM_LOG_DIRTY_PAGES, "re-registered with the log flag");
    // An E segment range turned to ROM: its RAM pages (the old slot) are dirty, the ROM's
    // slot is no RAM and is not logged.
    shadow.setAccess(0xe_4000, 0x4000, "rom");
    const e4000 = [...vm.memorySlots.values()].find((s) => s.guestPhysAddr === 0xe_4000)!;
    assert.equal(e4000.userspaceAddr >= rom.address, true, "the ROM backs it");
    assert.equal(e4000.flags, KVM_MEM_READONLY);
    assert.deepEqual(dirtyPages(log.fetch()), ["e4000+4", "f0000+16"]);
    assert.deepEqual(dirtyPages(log.fetch()), []);

    log.stop();
    assert.deepEqual(logged(), [], "logging off on every slot");
    shadow.setAccess(0xf_0000, 0x1_0000, "read-only");
    shadow.setAccess(0xf_0000, 0x1_0000, "read-write");
    assert.equal(fSegment().flags, 0, "a slot registered after stop is not logged");
  } finally {
    vm.close();
    rom.unmap();
  }
});

/** `promise`, or an error after `ms`. */
async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** MSR_KVM_SYSTEM_TIME_NEW: where the guest asked KVM to keep its kvmclock (bit 0: on). */
const KVM_SYSTEM_TIME_MSR = 0x4b56_4d01;
/** struct pvclock_vcpu_time_info. */
const PVCLOCK_BYTES = 32;

/**
 * The guest addresses of the bytes that differ between two machines' RAM, but for the
 * kvmclock structure of `a`'s first vCPU (SeaBIOS uses kvmclock under KVM): KVM rewrites
 * it when the destination's vCPU state is set (its version and flags change).
 */
function differingBytes(a: Machine, b: Machine): string[] {
  const [msr] = a.vcpus[0].getMsrs([KVM_SYSTEM_TIME_MSR]);
  const clock = (msr?.data ?? 0n) & 1n ? Number(msr.data & ~1n) : -1;
  const out: string[] = [];
  a.ram.memory.regions.forEach((region, index) => {
    const other = b.ram.memory.regions[index].bytes;
    for (let offset = 0; offset < region.bytes.length; offset++) {
      if (region.bytes[offset] === other[offset]) continue;
      const address = region.start + offset;
      if (address >= clock && address < clock + PVCLOCK_BYTES) continue;
      out.push(`${address.toString(16)}: ${region.bytes[offset]}/${other[offset]}`);
      if (out.length >= 20) return;
    }
  });
  return out;
}

/** SeaBIOS from its reset vector to the boot sector's exit: 5-38 s here by load. */
const BOOT_MS = 120_000;

kvmTest(
  "a firmware-booted machine migrates live mid-POST and boots on to its boot sector on the destination",
  async () => {
    await withImages(async ({ disk }) => {
      const config = (): VmmMachineConfig => ({
        vcpus: 1,
        memoryBytes: 32 * MIB,
        boot: { kind: "firmware", firmware: DEFAULT_FIRMWARE },
        disks: [{ path: disk, format: "raw", readOnly: false, transport: "pci" }],
        nics: [],
        balloon: false,
      });
      using kvm = Kvm.open();
      const boot = await loadBootImage(config().boot);
      const sourceConsole = new TextSink();
      const destinationConsole = new TextSink();
      const source = build(config(), { kvm, console: sourceConsole, boot });
      // Set from the target's callback (a holder: TypeScript does not see that it runs).
      const moved: { machine: Machine | null; differing: string[] | null } = {
        machine: null,
        differing: null,
      };
      // The destination's RAM, restored and not yet run, is the paused source's, page for
      // page (the shadow RAM the dirty log tracked through PAM's slots included).
      const target = new MachineMigrationTarget(
        config(),
        { kvm, console: destinationConsole, boot },
        {
          restored(machine) {
            moved.machine = machine;
            moved.differing = differingBytes(source, machine);
            machine.start();
          },
          started: Promise.resolve(),
        },
      );
      try {
        source.start();
        // POST has begun (SeaBIOS prints its banner first): it still shadows and locks
        // its F segment through PAM, copies option ROMs, reads the disk.
        await sourceConsole.waitFor(/SeaBIOS \(version/, BOOT_MS);
        // The copy is held back until the source's PAM re-registers a slot with its dirty log
        // on (SeaBIOS opens and locks its shadow late in POST), then runs at full speed.
        let logging = false;
        let slotChanges = 0;
        let pamSeen = () => {};
        const pam = new Promise<void>((resolve) => pamSeen = resolve);
        const register = source.vm.setUserMemoryRegion.bind(source.vm);
        source.vm.setUserMemoryRegion = (region) => {
          register(region);
          if (!logging) return;
          slotChanges++;
          pamSeen();
        };
        const migrationSource = new MachineMigrationSource(source, config(), kvm);
        const startLog = migrationSource.startDirtyLog.bind(migrationSource);
        migrationSource.startDirtyLog = () => {
          startLog();
          logging = true;
        };
        const l = link();
        const send = l.source.writer.send.bind(l.source.writer);
        l.source.writer.send = async (command, ...parts) => {
          if (logging && slotChanges === 0) await deadline(pam, BOOT_MS, "no PAM write");
          return send(command, ...parts);
        };
        const start = {
          domain: "firmware",
          config: config(),
          ram: source.ram.memory.regions.map((r) => ({
            guestAddress: r.start,
            size: r.bytes.length,
          })),
          disks: await Promise.all(
            configDisks(config()).map(({ id, path }) => diskClaim(id, path)),
          ),
        };
        const [result] = await Promise.all([
          sendMigration(migrationSource, l.source, start, {
            ...DEFAULT_CONVERGENCE,
            maxDowntimeMs: 300, // generous: CI hosts are loaded
            timeoutMs: 120_000,
            offline: false,
            bandwidth: 0,
            completeTimeoutMs: 60_000,
          }),
          receiveMigration(l.destination, target),
        ]);
        const destination = moved.machine;
        assert.ok(destination !== null && target.machine === destination);
        assert.deepEqual(
          moved.differing,
          [],
          "bytes the destination got wrong (source/destination)",
        );
        assert.ok(source.isPaused, "the source stays paused once the destination runs");
        assert.ok(slotChanges > 0, "PAM re-registered slots while the dirty log was on");
        const ended = await deadline(destination.ended, BOOT_MS, "no exit on the destination");
        const text = destinationConsole.text;
        assert.doesNotMatch(
          sourceConsole.text,
          /boot sector: hello on COM1/,
          "the source reached the boot sector before the migration: nothing left to test",
        );
        assert.match(text, /boot sector: hello on COM1/, `destination:\n${text}`);
        assert.match(text, /F segment: read-only/, "the PAM lock holds on the destination");
        assert.match(text, new RegExp(SECTOR_ONE), "int 13h read on the destination's disk");
        assert.doesNotMatch(text, /SeaBIOS \(version/, "no second boot");
        assert.deepEqual(ended, { kind: "debugExit", status: 7 }, text);
        console.log(
          `migrated in ${result.totalMs} ms, ${result.iterations} rounds, ` +
            `${result.bytesSent} bytes, downtime ${result.downtimeMs} ms, ` +
            `${slotChanges} slot changes while logging`,
        );
      } finally {
        source.stop("test over");
        await source.close();
        moved.machine?.stop("test over");
        await moved.machine?.close();
      }
    });
  },
  2 * BOOT_MS + 60_000,
);
