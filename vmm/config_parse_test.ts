import assert from "node:assert/strict";
import { validateVmmConfig, VmmConfigError } from "./config_parse.ts";
import type { VmmConfig } from "./vmm_config.ts";

function config(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: VmmConfig = {
    name: "t",
    uuid: "0b6f2a5e-6c1d-4a57-9d43-3f1c2b7a9e10",
    vcpus: 1,
    memoryBytes: 64 * 1024 * 1024,
    boot: { kind: "demo" },
    disks: [],
    nics: [],
    balloon: false,
    onReboot: "destroy",
    logFile: "/run/t/console.log",
    runDir: "/run/t",
  };
  return { ...base, ...overrides };
}

const disk = (extra: Record<string, unknown> = {}) => ({
  path: "/images/a.raw",
  format: "raw",
  readOnly: false,
  transport: "pci",
  ...extra,
});
const nic = (extra: Record<string, unknown> = {}) => ({
  tap: "auto",
  mac: "52:54:00:00:00:01",
  transport: "pci",
  ...extra,
});

function refused(value: Record<string, unknown>, message: RegExp): void {
  assert.throws(() => validateVmmConfig(value), (e) => {
    assert.ok(e instanceof VmmConfigError, String(e));
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("validateVmmConfig() keeps device ids, the transport and a demo command line", () => {
  const value = config({
    boot: { kind: "demo", cmdline: "ticks=3", initrd: "/boot/initrd" },
    disks: [disk({ id: "root" }), disk()],
    nics: [nic({ id: "uplink" })],
    transport: "mmio",
  });
  assert.deepEqual(validateVmmConfig(value), value);
});

Deno.test("validateVmmConfig() refuses malformed, built-in and repeated device ids", () => {
  refused(config({ disks: [disk({ id: "-x" })] }), /^disks\[0\].id: '-x' must be 1-32 letters/);
  refused(config({ disks: [disk({ id: "a/b" })] }), /^disks\[0\].id: 'a\/b' must be/);
  refused(config({ nics: [nic({ id: "x".repeat(33) })] }), /^nics\[0\].id: .* must be 1-32/);
  refused(config({ nics: [nic({ id: "rng0" })] }), /^nics\[0\].id: 'rng0' is the id of a built-in/);
  refused(
    config({ disks: [disk(), disk({ id: "vda" })] }),
    /^disks\[1\].id: 'vda' is already the id of disks\[0\]/,
  );
  refused(
    config({ disks: [disk({ id: "net0" })], nics: [nic()] }),
    /^nics\[0\]: 'net0' is already the id of disks\[0\].id/,
  );
});

Deno.test("validateVmmConfig() refuses a bad device transport and a demo boot's kernel", () => {
  refused(config({ transport: "isa" }), /^transport: 'isa' is not one of pci, mmio/);
  refused(config({ boot: { kind: "demo", initrd: "initrd" } }), /^boot.initrd: .* absolute path/);
  refused(config({ boot: { kind: "demo", kernel: "/k" } }), /^boot.kernel: unknown field/);
});

Deno.test("validateVmmConfig() applies the common MAC, interface-name and serial rules", () => {
  refused(config({ nics: [nic({ mac: "00:00:00:00:00:00" })] }), /^nics\[0\].mac: .*zero address/);
  refused(config({ nics: [nic({ mac: "01:00:5e:00:00:01" })] }), /^nics\[0\].mac: .*multicast/);
  refused(config({ nics: [nic({ bridge: ".." })] }), /^nics\[0\].bridge: '..' is not an interface/);
  refused(
    config({ disks: [disk({ serial: "caf\u00e9" })] }),
    /^disks\[0\].serial: .* printable ASCII/,
  );
  assert.equal(
    (validateVmmConfig(config({ disks: [disk({ serial: "x".repeat(20) })] })) as VmmConfig)
      .disks[0].serial,
    "x".repeat(20),
  );
});

Deno.test("validateVmmConfig() takes a firmware boot with its order and CD-ROMs", () => {
  const value = config({
    boot: { kind: "firmware", firmware: "/usr/share/seabios/bios.bin", order: ["cdrom", "disk"] },
    cdroms: ["/images/install.iso"],
  });
  assert.deepEqual(validateVmmConfig(value), value);
  const firmware = { kind: "firmware", firmware: "/bios.bin" };
  refused(config({ boot: { ...firmware, order: ["floppy"] } }), /^boot.order\[0\]: 'floppy'/);
  refused(config({ boot: { ...firmware, order: ["disk", "disk"] } }), /^boot.order: names a/);
  refused(config({ boot: { ...firmware, kernel: "/k" } }), /^boot.kernel: unknown field/);
  refused(config({ boot: { kind: "firmware", firmware: "bios.bin" } }), /absolute path/);
  refused(config({ cdroms: ["/a.iso"] }), /^cdroms: CD-ROMs need a firmware boot/);
  refused(config({ boot: firmware, cdroms: ["a.iso"] }), /^cdroms\[0\]: must be the absolute/);
});

Deno.test("validateVmmConfig() takes SATA disks on a firmware boot, six AHCI ports in all", () => {
  const firmware = { kind: "firmware", firmware: "/bios.bin" };
  const sata = { path: "/images/w.qcow2", format: "qcow2", readOnly: false };
  const value = config({ boot: firmware, sataDisks: [sata], cdroms: ["/a.iso"] });
  assert.deepEqual(validateVmmConfig(value), value);
  refused(config({ sataDisks: [sata] }), /^sataDisks: SATA disks need a firmware boot/);
  refused(
    config({
      boot: firmware,
      sataDisks: [sata, sata, sata, sata],
      cdroms: ["/a.iso", "/b.iso", "/c.iso"],
    }),
    /^sataDisks: SATA disks and CD-ROMs share 6 ports/,
  );
  refused(
    config({ boot: firmware, sataDisks: [{ ...sata, bus: "x" }] }),
    /^sataDisks\[0\].bus: unknown/,
  );
});

Deno.test("restore: a state file to restore instead of booting, paused or not, forced or not", () => {
  const parsed = validateVmmConfig(
    config({ restore: { stateFile: "/var/lib/d/web.state", paused: true, force: true } }),
  );
  assert.deepEqual(parsed.restore, {
    stateFile: "/var/lib/d/web.state",
    paused: true,
    force: true,
  });
  assert.deepEqual(
    validateVmmConfig(config({ restore: { stateFile: "/s", paused: false } })).restore,
    { stateFile: "/s", paused: false },
  );
  refused(config({ restore: { stateFile: "web.state", paused: false } }), /restore\.stateFile/);
  refused(config({ restore: { stateFile: "/s" } }), /restore\.paused/);
  refused(config({ restore: { stateFile: "/s", paused: false, keep: 1 } }), /restore\.keep/);
});
