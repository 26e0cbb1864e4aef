/**
 * The pure parts of machine save/restore, without KVM: sections assembled and matched,
 * configs compared, disks' identities and the host's CPUID checked, RAM layouts.
 */
import assert from "node:assert/strict";
import { StateError } from "../../common/persist.ts";
import type { CpuidEntry } from "../../ffi/kvm/cpuid.ts";
import type { VmmMachineConfig } from "../vmm_config.ts";
import {
  checkConfigMatch,
  checkDiskIdentities,
  type DiskIdentity,
  parseSavedConfig,
  savedMachineConfig,
  StateMismatchError,
} from "./config_match.ts";
import { checkCpuidCompatible, CpuidMismatchError } from "./cpuid_check.ts";
import {
  expectedSections,
  FIRMWARE_SECTION,
  firmwarePieces,
  kvmStateOf,
  matchSections,
  saveSections,
  type StatePiece,
} from "./machine_sections.ts";
import { checkRamLayout } from "./restore_machine.ts";
import { parseStateDocument } from "./state_document.ts";
import { checkMigratable, resolveSaveTarget, SaveError } from "./save_machine.ts";
import { Bus } from "../../core/bus.ts";
import { GuestMemory } from "../../core/guest_memory.ts";
import { FirmwarePlatform } from "../../devices/firmware/firmware_platform.ts";
import { PciBus } from "../../devices/pci/pci_bus.ts";
import { FakeMsiController } from "../../devices/pci/testing/fakes.ts";
import { MemoryDisk } from "../../devices/storage/ahci/_test_support.ts";
import type { DeviceManager } from "../device_manager.ts";

const MIB = 1024 * 1024;

function machine(overrides: Partial<VmmMachineConfig> = {}): VmmMachineConfig {
  return {
    vcpus: 2,
    memoryBytes: 64 * MIB,
    boot: { kind: "linux", kernel: "/boot/vmlinux", cmdline: "console=ttyS0" },
    disks: [{ path: "/images/a.raw", format: "raw", readOnly: false, transport: "pci" }],
    nics: [],
    rng: {},
    balloon: false,
    transport: "mmio",
    ...overrides,
  };
}

const noFacts = { diskFormats: new Map(), macs: new Map() };

Deno.test("saveSections() records each piece's state with its own version", () => {
  const pieces: StatePiece[] = [
    { id: "serial0", kind: "serial", save: () => ({ version: 3, lcr: 1 }), restore: () => {} },
    { id: "rtc", kind: "rtc", save: () => ({ cmos: [] }), restore: () => {} },
  ];
  assert.deepEqual(saveSections(pieces), [
    { id: "serial0", kind: "serial", version: 3, state: { version: 3, lcr: 1 } },
    { id: "rtc", kind: "rtc", version: 1, state: { cmos: [] } },
  ]);
});

Deno.test("matchSections() refuses a missing section, another kind and a leftover, by id", () => {
  const section = (id: string, kind: string) => ({ id, kind, version: 1, state: {} });
  const expected = [{ id: "vm", kind: "vm" }, { id: "vda", kind: "virtio-blk/pci" }];
  const matched = matchSections([section("vda", "virtio-blk/pci"), section("vm", "vm")], expected);
  assert.equal(matched.get("vda")?.kind, "virtio-blk/pci");
  assert.throws(
    () => matchSections([section("vm", "vm")], expected),
    (e) => e instanceof StateError && /no section for vda \(virtio-blk\/pci\)/.test(e.message),
  );
  assert.throws(
    () => matchSections([section("vm", "vm"), section("vda", "virtio-blk/mmio")], expected),
    (e) =>
      e instanceof StateError && /vda\.kind.*virtio-blk\/mmio.*virtio-blk\/pci/.test(e.message),
  );
  assert.throws(
    () =>
      matchSections(
        [section("vm", "vm"), section("vda", "virtio-blk/pci"), section("net0", "virtio-net/pci")],
        expected,
      ),
    (e) => e instanceof StateError && /net0.*virtio-net\/pci/.test(e.message),
  );
});

Deno.test("expectedSections() names the KVM pieces, every planned device and the disks", () => {
  const sections = expectedSections(machine());
  assert.deepEqual(sections, [
    { id: "vm", kind: "vm" },
    { id: "vcpu0", kind: "vcpu" },
    { id: "vcpu1", kind: "vcpu" },
    { id: "pci-host", kind: "pci-host" },
    { id: "serial0", kind: "serial" },
    { id: "i8042", kind: "i8042" },
    { id: "rtc", kind: "rtc" },
    { id: "vda", kind: "virtio-blk/pci" },
    { id: "rng0", kind: "virtio-rng/mmio" },
    { id: "host:disks", kind: "disk-images" },
  ]);
});

Deno.test("kvmStateOf() puts the vm and vcpuN sections together as core/kvm_state reads it", () => {
  const sections = new Map([
    ["vm", { id: "vm", kind: "vm", version: 1, state: { v: "vm" } }],
    ["vcpu0", { id: "vcpu0", kind: "vcpu", version: 1, state: { v: 0 } }],
    ["vcpu1", { id: "vcpu1", kind: "vcpu", version: 1, state: { v: 1 } }],
  ]);
  assert.deepEqual(kvmStateOf(sections, 2), {
    version: 1,
    vm: { v: "vm" },
    vcpus: [{ v: 0 }, { v: 1 }],
  });
});

Deno.test("a saved config reads back as the same machine, VMM-only fields left out", () => {
  const given = {
    ...machine({ nics: [{ tap: "auto", transport: "pci" }] }),
    name: "web",
    uuid: "0b6f2a5e-6c1d-4a57-9d43-3f1c2b7a9e10",
    runDir: "/run/web",
  } as VmmMachineConfig;
  const saved = savedMachineConfig(given, {
    diskFormats: new Map(),
    macs: new Map([["net0", "52:54:00:12:34:56"]]),
  });
  assert.equal("name" in saved, false);
  assert.equal("runDir" in saved, false);
  const parsed = parseSavedConfig(JSON.parse(JSON.stringify(saved)));
  assert.equal(parsed.nics[0].mac, "52:54:00:12:34:56", "the MAC the NIC had is recorded");
  assert.deepEqual(parsed.boot, given.boot, "a valid boot is kept for a reboot");
  const kernelless = { ...saved, boot: { kind: "linux", kernel: "", cmdline: "" } };
  assert.deepEqual(parseSavedConfig(kernelless).boot, { kind: "demo" }, "an invalid boot is not");
  checkConfigMatch(parsed, given);
});

Deno.test("parseSavedConfig() names the bad field under document.config", () => {
  const saved = savedMachineConfig(machine(), noFacts);
  assert.throws(
    () => parseSavedConfig({ ...saved, vcpus: "two" }),
    (e) => e instanceof StateError && /document\.config.*vcpus/.test(e.message),
  );
  assert.throws(
    () => parseSavedConfig({ ...saved, boot: { kind: "bios" } }),
    (e) => e instanceof StateError && /document\.config\.boot\.kind/.test(e.message),
  );
  assert.throws(
    () => parseSavedConfig({ ...saved, name: "x" }),
    (e) => e instanceof StateError && /document\.config\.name/.test(e.message),
  );
});

Deno.test("checkConfigMatch() refuses other vCPUs, RAM, devices or places, saying what differs", () => {
  const saved = machine();
  checkConfigMatch(saved, machine({ boot: { kind: "demo" } })); // the kernel is in RAM
  const refused = (given: VmmMachineConfig, message: RegExp) =>
    assert.throws(
      () => checkConfigMatch(saved, given),
      (e) => e instanceof StateMismatchError && e.code === "conflict" && message.test(e.message),
    );
  refused(machine({ vcpus: 4 }), /vCPUs: 2, the config has 4/);
  refused(machine({ memoryBytes: 128 * MIB }), /memoryBytes 67108864/);
  refused(machine({ rng: undefined }), /rng0 rng on mmio/);
  refused(machine({ balloon: true }), /balloon0/);
  refused(
    machine({
      disks: [{ path: "/images/a.raw", format: "raw", readOnly: false, transport: "mmio" }],
    }),
    /vda disk on pci slot 1/,
  );
  refused(
    machine({
      disks: [{ path: "/images/a.raw", format: "raw", readOnly: true, transport: "pci" }],
    }),
    /vda disk on pci slot 1/,
  );
});

Deno.test("checkDiskIdentities() refuses another image or size unless forced", () => {
  const then: DiskIdentity = { id: "vda", path: "/a", device: "2049", inode: "12", size: 4096 };
  checkDiskIdentities([then], [{ ...then, path: "/moved" }], false);
  const refused = (now: DiskIdentity, message: RegExp) => {
    assert.throws(
      () => checkDiskIdentities([then], [now], false),
      (e) => e instanceof StateMismatchError && message.test(e.message),
    );
    checkDiskIdentities([then], [now], true);
  };
  refused({ ...then, inode: "13" }, /vda.*not the image the state was saved with.*force/);
  refused({ ...then, size: 8192 }, /vda.*8192 bytes, 4096 at the save/);
  assert.throws(() => checkDiskIdentities([], [then], true), /no image for disk vda/);
});

function leaf(fn: number, index: number, regs: Partial<CpuidEntry> = {}): CpuidEntry {
  return { function: fn, index, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, ...regs };
}
// "GenuineIntel": EBX "Genu", EDX "ineI", ECX "ntel".
const INTEL = leaf(0, 0, { eax: 0xd, ebx: 0x756e6547, edx: 0x49656e69, ecx: 0x6c65746e });
const AMD = leaf(0, 0, { eax: 0xd, ebx: 0x68747541, edx: 0x69746e65, ecx: 0x444d4163 });

Deno.test("checkCpuidCompatible() refuses features the host lacks and names them", () => {
  const host = [INTEL, leaf(1, 0, { ecx: 1 << 28 }), leaf(7, 0, { ebx: 1 << 3 })];
  const saved = [
    INTEL,
    // AVX, plus OSXSAVE and HYPERVISOR, which are not host features.
    leaf(1, 0, { ecx: (1 << 28) | (1 << 27) | (1 << 31), ebx: 0x01020000 }),
    leaf(7, 0, { ebx: 1 << 3 }),
  ];
  checkCpuidCompatible(saved, host);
  const withAvx2 = [...saved.slice(0, 2), leaf(7, 0, { ebx: (1 << 3) | (1 << 5) })];
  assert.throws(
    () => checkCpuidCompatible(withAvx2, host, 1),
    (e) =>
      e instanceof CpuidMismatchError && e.code === "conflict" &&
      /vCPU 1.*CPUID\.\(EAX=0x7,ECX=0\)\.EBX bit 5 \(avx2\)/.test(e.message),
  );
  assert.throws(
    () => checkCpuidCompatible(saved, [AMD, ...host.slice(1)]),
    (e) => e instanceof CpuidMismatchError && /GenuineIntel.*AuthenticAMD/.test(e.message),
  );
});

Deno.test("checkRamLayout() accepts only the machine's RAM ranges for its size", () => {
  checkRamLayout([{ guestAddress: 0, size: 64 * MIB, fileOffset: 0 }], 64 * MIB);
  assert.throws(
    () => checkRamLayout([{ guestAddress: 0, size: 32 * MIB, fileOffset: 0 }], 64 * MIB),
    (e) =>
      e instanceof StateMismatchError &&
      /not the layout of a 67108864-byte machine/.test(e.message),
  );
});

Deno.test("resolveSaveTarget() puts the memory file beside the state file, or none inline", () => {
  assert.deepEqual(resolveSaveTarget({ stateFile: "/s/vm.state" }), {
    stateFile: "/s/vm.state",
    memoryFile: "/s/vm.state.mem",
    inline: false,
    purpose: "save",
  });
  assert.equal(resolveSaveTarget({ stateFile: "/s/a", inline: true }).memoryFile, undefined);
  const refused = (target: Parameters<typeof resolveSaveTarget>[0], message: RegExp) =>
    assert.throws(
      () => resolveSaveTarget(target),
      (e) => e instanceof SaveError && e.code === "invalid" && message.test(e.message),
    );
  refused({ stateFile: "vm.state" }, /stateFile: 'vm.state' is not an absolute path/);
  refused({ stateFile: "/s/a", memoryFile: "/t/a.mem" }, /must be in the state file's directory/);
  refused({ stateFile: "/s/a", memoryFile: "/s/a" }, /must not be the state file/);
  refused({ stateFile: "/s/a", memoryFile: "/s/a.mem", inline: true }, /inline save/);
});

Deno.test("a firmware boot's platform is a section of its own; it migrates unless it has SATA disks", () => {
  const firmware = machine({ boot: { kind: "firmware", firmware: "/bios.bin" } });
  assert.deepEqual(
    expectedSections(firmware).filter(({ id }) => id === FIRMWARE_SECTION.id),
    [{ id: "firmware:chipset", kind: "pc-i440fx" }],
  );
  assert.equal(expectedSections(machine()).some(({ id }) => id === FIRMWARE_SECTION.id), false);
  // A kernel-booted machine's state lacks it: refused before anything is loaded.
  const sections = expectedSections(machine()).map(({ id, kind }) => ({
    id,
    kind,
    version: 1,
    state: {},
  }));
  assert.throws(
    () => matchSections(sections, expectedSections(firmware)),
    (e) => e instanceof StateError && /no section for firmware:chipset/.test(e.message),
  );
  checkMigratable(firmware);
  checkMigratable(machine({ ...firmware, cdroms: ["/cd.iso"] }));
  checkMigratable(machine());
  assert.throws(
    () => checkMigratable({ ...firmware, sataDisks: [{ path: "/d.img", readOnly: false }] }),
    (e) => e instanceof SaveError && e.code === "conflict" && /SATA disks/.test(e.message),
  );
});

Deno.test("a firmware boot's saved config, with SATA disks and CD-ROMs, reads back and matches", () => {
  const config = machine({
    boot: { kind: "firmware", firmware: "/usr/share/seabios/bios.bin", order: ["cdrom", "disk"] },
    sataDisks: [{ path: "/images/sata.raw", format: "raw", readOnly: true }],
    cdroms: ["/images/cd.iso"],
  });
  const parsed = parseSavedConfig(JSON.parse(JSON.stringify(savedMachineConfig(config, noFacts))));
  assert.deepEqual(parsed.boot, config.boot);
  assert.deepEqual(parsed.sataDisks, config.sataDisks);
  checkConfigMatch(parsed, config);
});

/** A firmware platform on its PCI bus, as the builder puts one together (without KVM). */
function platformMachine(cdroms: number) {
  const pam: string[] = [];
  const memory = GuestMemory.ofSize(16 * MIB);
  const pio = new Bus();
  const platform = new FirmwarePlatform({
    memory,
    cpus: 1,
    ram: [{ start: 0, size: 16 * MIB }],
    setIrqLine() {},
    onReset() {},
    onPowerOff() {},
    cdroms: Array.from({ length: cdroms }, () => new MemoryDisk(new Uint8Array(8 * 2048), true)),
    log: () => {},
    biosArea: {
      setAccess: (start, size, access) =>
        pam.push(`${start.toString(16)}+${size.toString(16)} ${access}`),
    },
  });
  const pci = new PciBus({
    mmio: new Bus(),
    pio,
    msi: new FakeMsiController(),
    setIrqLevel() {},
    hostBridge: platform.hostBridge,
  });
  platform.install({ pio, pci, diskSlots: [] });
  const devices = { firmware: platform, pciBus: pci } as unknown as DeviceManager;
  return { platform, pci, devices, pam };
}

Deno.test("the firmware:chipset section carries PAM (re-applied on restore), fw_cfg and the PCI functions", () => {
  const source = platformMachine(1);
  // SeaBIOS locks the F segment read-only (PAM0 RE only) and enables the AHCI BAR and bus mastering.
  source.platform.hostBridge.writeConfig(0x58, 0x10 << 8, 0xff00);
  const ahciSlot = source.platform.pciSlots.ahci!;
  source.pci.slot(ahciSlot)!.write(4, Uint8Array.of(0x06, 0));
  source.platform.fwCfg.write(0, Uint8Array.of(0x19, 0)); // select the file directory
  const [section] = saveSections(firmwarePieces(source.devices));
  assert.equal(section.id, "firmware:chipset");
  // Through JSON, as a state file carries it.
  const state = JSON.parse(JSON.stringify(section.state));

  const target = platformMachine(1);
  firmwarePieces(target.devices)[0].restore(state, "firmware:chipset.state");
  assert.deepEqual([...target.platform.hostBridge.pam], [0x10, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
  assert.ok(target.pam.includes("f0000+10000 read-only"), target.pam.join(", "));
  assert.equal(target.pci.slot(ahciSlot)!.command & 0x06, 0x06);
  // The same state again, but for the PM timer, which runs on.
  const withoutTimer = (state: unknown) => {
    const copy = JSON.parse(JSON.stringify(state));
    delete copy.platform.pm.timer;
    return copy;
  };
  assert.deepEqual(
    withoutTimer(saveSections(firmwarePieces(target.devices))[0].state),
    withoutTimer(state),
  );

  // Another machine's platform (no AHCI), or a hostile PCI part, is refused by field.
  const refused = (devices: DeviceManager, bad: unknown, field: RegExp) =>
    assert.throws(
      () => firmwarePieces(devices)[0].restore(bad, "firmware:chipset.state"),
      (e) => e instanceof StateError && field.test(e.path),
    );
  refused(platformMachine(0).devices, state, /firmware:chipset\.state\.pci\.ahci/);
  refused(target.devices, { ...state, pci: { ...state.pci, ahci: undefined } }, /pci\.ahci$/);
  refused(target.devices, { ...state, version: 2 }, /version/);
  refused(
    target.devices,
    { ...state, platform: { ...state.platform, fwCfg: { version: 1 } } },
    /\.platform$/,
  );
});

Deno.test("a device id the config allows (capitals, a leading digit) is a valid section id", () => {
  const config = machine({
    disks: [{ id: "Data1", path: "/d.raw", format: "raw", readOnly: false, transport: "pci" }],
  });
  const sections = expectedSections(config).map(({ id, kind }) => ({
    id,
    kind,
    version: 1,
    state: {},
  }));
  const document = parseStateDocument({
    denovisorVersion: "0.2.0",
    createdAt: new Date(0).toISOString(),
    purpose: "save",
    config: savedMachineConfig(config, noFacts),
    memory: {
      storage: "inline",
      pageSize: 4096,
      ranges: [{ guestAddress: 0, size: 64 * MIB, fileOffset: 0 }],
      fileSize: 64 * MIB,
    },
    sections,
  });
  assert.equal(
    matchSections(document.sections, expectedSections(config)).get("Data1")?.kind,
    "virtio-blk/pci",
  );
});
