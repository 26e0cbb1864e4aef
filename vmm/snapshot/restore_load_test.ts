/**
 * The first half of a restore without KVM: a state file and memory file written as a save
 * writes them (sample KVM states), then loaded against a config and a host. A good one
 * maps guest RAM with the saved contents; a bad one (another config, a host without a
 * CPU feature, a missing section, a corrupted or truncated file, a hostile vCPU state) is
 * refused before any memory is mapped.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { StateError } from "../../common/persist.ts";
import { GuestRamError } from "../../core/memory.ts";
import {
  SAMPLE_SUPPORT,
  sampleVcpuState,
  sampleVmState,
} from "../../core/testing/kvm_state_samples.ts";
import type { VmmMachineConfig } from "../vmm_config.ts";
import { savedMachineConfig, StateMismatchError } from "./config_match.ts";
import { CpuidMismatchError } from "./cpuid_check.ts";
import type { RamSource } from "./inline_memory.ts";
import { type HostFacts, loadMachineState } from "./restore_machine.ts";
import { layoutRanges, writeMemoryFile } from "./memory_file.ts";
import type { StateDocument, StateSection } from "./state_document.ts";
import { writeStateFile } from "./state_file.ts";
import { StateFileError } from "./state_format.ts";

const MIB = 1024 * 1024;
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));

const config = (vcpus = 2): VmmMachineConfig => ({
  vcpus,
  memoryBytes: 4 * MIB,
  boot: { kind: "linux", kernel: "/boot/guest.elf", cmdline: "" },
  disks: [],
  nics: [],
  balloon: false,
});

const host = (): HostFacts => ({
  support: SAMPLE_SUPPORT,
  supportedCpuid: viaJson(sampleVcpuState(0).cpuid),
});

function sections(): StateSection[] {
  const section = (id: string, kind: string, state: unknown) => ({ id, kind, version: 1, state });
  return [
    section("vm", "vm", viaJson(sampleVmState())),
    section("vcpu0", "vcpu", viaJson(sampleVcpuState(0))),
    section("vcpu1", "vcpu", viaJson(sampleVcpuState(1))),
    // Device states are checked by the devices in the second half, not here.
    ...["pci-host", "serial", "i8042", "rtc"].map((kind) =>
      section(kind === "serial" ? "serial0" : kind, kind, { version: 1 })
    ),
    section("host:disks", "disk-images", { version: 1, disks: [] }),
  ];
}

/** Guest RAM with a recognisable page at 1 MiB. */
function ram(): RamSource[] {
  const bytes = new Uint8Array(4 * MIB);
  bytes.fill(0x5a, MIB, MIB + 4096);
  return [{ guestAddress: 0, bytes }];
}

async function save(
  dir: string,
  options: { inline?: boolean; edit?: (document: StateDocument) => void } = {},
): Promise<string> {
  const stateFile = join(dir, "vm.state");
  const sources = ram();
  const ranges = layoutRanges(sources);
  const document: StateDocument = {
    denovisorVersion: "test",
    createdAt: new Date().toISOString(),
    purpose: "save",
    config: savedMachineConfig(config(), { diskFormats: new Map(), macs: new Map() }),
    memory: options.inline
      ? { storage: "inline", pageSize: 4096, ranges, fileSize: 4 * MIB }
      : { storage: "file", file: "vm.state.mem", pageSize: 4096, ranges, fileSize: 4 * MIB },
    sections: sections(),
  };
  options.edit?.(document);
  if (options.inline) {
    await writeStateFile(stateFile, document, sources);
  } else {
    await writeMemoryFile(`${stateFile}.mem`, sources);
    await writeStateFile(stateFile, document);
  }
  return stateFile;
}

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-load-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function refused(
  stateFile: string,
  check: (error: unknown) => boolean,
  options: { config?: VmmMachineConfig; host?: HostFacts } = {},
): Promise<void> {
  await assert.rejects(
    () => loadMachineState(options.config ?? config(), stateFile, options.host ?? host()),
    (error) => {
      assert.ok(check(error), String(error));
      return true;
    },
  );
}

for (const inline of [false, true]) {
  Deno.test(`loadMachineState() maps the saved RAM (${inline ? "inline" : "memory file"})`, () =>
    inTempDir(async (dir) => {
      const stateFile = await save(dir, { inline });
      const loaded = await loadMachineState(config(), stateFile, host());
      try {
        assert.equal(loaded.mappings.length, 1);
        const bytes = loaded.mappings[0].bytes();
        assert.equal(bytes.length, 4 * MIB);
        assert.equal(bytes[MIB], 0x5a);
        assert.equal(bytes[MIB + 4095], 0x5a);
        assert.equal(bytes[MIB + 4096], 0);
        assert.deepEqual([...loaded.sections.keys()].sort(), [
          "host:disks",
          "i8042",
          "pci-host",
          "rtc",
          "serial0",
          "vcpu0",
          "vcpu1",
          "vm",
        ]);
      } finally {
        loaded.mappings.forEach((mapping) => mapping.unmap());
      }
    }));
}

Deno.test("loadMachineState() refuses a state of another machine, naming what differs", () =>
  inTempDir(async (dir) => {
    const stateFile = await save(dir);
    await refused(
      stateFile,
      (e) => e instanceof StateMismatchError && /vCPUs: 2, the config has 1/.test(e.message),
      { config: config(1) },
    );
    await refused(
      stateFile,
      (e) => e instanceof StateMismatchError && /memoryBytes/.test(e.message),
      { config: { ...config(), memoryBytes: 8 * MIB } },
    );
  }));

Deno.test("loadMachineState() refuses a host whose KVM lacks a CPU feature the guest used", () =>
  inTempDir(async (dir) => {
    const stateFile = await save(dir);
    const lacking = host();
    const leaf1 = lacking.supportedCpuid.find((entry) => entry.function === 1)!;
    leaf1.ecx &= ~(1 << 13); // cx16
    await refused(
      stateFile,
      (e) => e instanceof CpuidMismatchError && /vCPU 0.*bit 13 \(cx16\)/.test(e.message),
      { host: lacking },
    );
  }));

Deno.test("loadMachineState() refuses missing or hostile sections before mapping anything", () =>
  inTempDir(async (dir) => {
    const withoutRtc = await save(dir, {
      edit: (d) => d.sections = d.sections.filter((s) => s.id !== "rtc"),
    });
    await refused(
      withoutRtc,
      (e) => e instanceof StateError && /no section for rtc/.test(e.message),
    );
    const hostile = await save(dir, {
      edit: (d) => (d.sections[2].state as { id: number }).id = 7,
    });
    await refused(hostile, (e) => e instanceof StateError && /vcpus\[1\]/.test(e.message));
  }));

Deno.test("loadMachineState() refuses a corrupted state file and a truncated memory file", () =>
  inTempDir(async (dir) => {
    const stateFile = await save(dir);
    await Deno.truncate(`${stateFile}.mem`, 2 * MIB);
    await refused(stateFile, (e) => e instanceof GuestRamError && /2097152 bytes/.test(e.message));
    const bytes = await Deno.readFile(stateFile);
    bytes[40] ^= 0xff;
    await Deno.writeFile(stateFile, bytes);
    await refused(stateFile, (e) => e instanceof StateFileError && /checksum/.test(e.message));
  }));
