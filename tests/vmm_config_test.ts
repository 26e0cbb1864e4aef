/**
 * The VMM config is untrusted input: every mistake is refused with the field's path.
 * Also the i8042's Ctrl-Alt-Del, which the VMM's shutdown presses.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { validateVmmConfig, VmmConfigError } from "../vmm/config_parse.ts";
import { domainConfig, exists, spawnVmm } from "./vmm_support.ts";
import { I8042 } from "../devices/legacy/i8042.ts";
import { runFiles } from "../vmm/run_files.ts";

const good = () => JSON.parse(JSON.stringify(domainConfig("/run/denovisor/domains/t")));

function refused(mutate: (c: Record<string, unknown>) => void, message: RegExp): void {
  const config = good();
  mutate(config);
  assert.throws(() => validateVmmConfig(config), (e) => {
    assert.ok(e instanceof VmmConfigError, String(e));
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("validateVmmConfig() accepts the config the daemon writes", () => {
  const config = good();
  config.disks = [{
    path: "/var/lib/denovisor/pools/default/a.qcow2",
    format: "qcow2",
    readOnly: false,
    transport: "mmio",
    serial: "root",
    rateLimit: { bandwidth: { size: 1048576, refillTimeMs: 1000 } },
  }];
  config.nics = [{ tap: "auto", mac: "52:54:00:00:00:01", bridge: "br0", transport: "pci" }];
  config.rng = {};
  assert.deepEqual(validateVmmConfig(config), config);
  assert.deepEqual(validateVmmConfig({ ...config, boot: { kind: "demo" } }).boot, { kind: "demo" });
});

Deno.test("validateVmmConfig() names the field of each mistake", () => {
  refused((c) => c.extra = 1, /^extra: unknown field/);
  refused((c) => delete c.uuid, /^uuid: must be a string, not missing/);
  refused((c) => c.uuid = "nope", /^uuid: 'nope' is not a UUID/);
  refused((c) => c.name = "../etc", /^name: '..\/etc' must be 1-64 letters/);
  refused((c) => c.vcpus = 0, /^vcpus: 0 is not from 1 to 254/);
  refused((c) => c.vcpus = 1.5, /^vcpus: must be a whole number, not number 1.5/);
  refused((c) => c.memoryBytes = 1024, /^memoryBytes: 1024 is not from 2097152/);
  refused((c) => c.memoryBytes = 4194305, /^memoryBytes: 4194305 is not a multiple of 4096/);
  refused((c) => c.boot = { kind: "bios" }, /^boot.kind: 'bios' is not one of demo, linux/);
  refused((c) => c.boot = { kind: "demo", kernel: "/k" }, /^boot.kernel: unknown field/);
  refused(
    (c) => c.boot = { kind: "linux", kernel: "vmlinux", cmdline: "" },
    /^boot.kernel: 'vmlinux' is not an absolute path/,
  );
  refused((c) => c.onReboot = "reboot", /^onReboot: 'reboot' is not one of destroy, restart/);
  refused((c) => c.logFile = "log", /^logFile: 'log' is not an absolute path/);
  // A valid disk: each case below breaks one field of it.
  const rawDisk = { path: "/a", format: "raw", readOnly: false, transport: "pci" };
  refused((c) => c.disks = {}, /^disks: must be an array, not an object/);
  refused(
    (c) => c.disks = [{ ...rawDisk, format: "vmdk" }],
    /^disks\[0\].format: 'vmdk' is not one of raw, qcow2/,
  );
  refused(
    (c) => c.disks = [{ ...rawDisk, serial: "x".repeat(21) }],
    /^disks\[0\].serial: .* is longer than 20 bytes/,
  );
  refused(
    (c) => c.disks = [{ ...rawDisk, rateLimit: { bandwidth: { size: 0, refillTimeMs: 1 } } }],
    /^disks\[0\].rateLimit.bandwidth.size: 0 is not from 1/,
  );
  refused(
    (c) => c.nics = [{ tap: "auto", mac: "zz", transport: "pci" }],
    /^nics\[0\].mac: /,
  );
  refused(
    (c) =>
      c.nics = [
        { tap: "tap0", mac: "52:54:00:00:00:01", transport: "pci" },
        { tap: "tap0", mac: "52:54:00:00:00:02", transport: "pci" },
      ],
    /^nics\[1\].tap: 'tap0' is used by two NICs/,
  );
  refused(
    (c) => c.nics = [{ tap: "a-very-long-tap-name", mac: "52:54:00:00:00:01", transport: "pci" }],
    /^nics\[0\].tap: .* is not an interface name/,
  );
  refused((c) => c.rng = { rate: 1 }, /^rng.rate: unknown field/);
  assert.throws(() => validateVmmConfig([]), /^VmmConfigError|must be an object, not an array/);
});

Deno.test("denovisor vmm refuses a bad config file with the path and field, exit 1, no pid file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-vmm-" });
  try {
    const path = join(dir, "config.json");
    const cases: Array<[string, RegExp]> = [
      ["{ not json", /config.json is not valid JSON/],
      [
        JSON.stringify({ ...domainConfig(dir), vcpus: "2" }),
        /config.json: vcpus: must be a whole number/,
      ],
      [
        JSON.stringify({ ...domainConfig(dir), runDir: join(dir, "missing") }),
        /Run directory .*missing does not exist/,
      ],
    ];
    for (const [text, message] of cases) {
      await Deno.writeTextFile(path, text);
      const child = spawnVmm(path);
      const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
      assert.equal(status.code, 1, stderr);
      assert.match(stderr, message);
      assert.equal(await exists(runFiles(dir).pidFile), false);
    }
    await Deno.remove(path);
    const child = spawnVmm(path);
    const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
    assert.equal(status.code, 1);
    assert.match(stderr, /Cannot read the VMM config .*config.json/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("I8042.sendCtrlAltDel() queues set 2 make codes and raises IRQ 1; set 1 once translated", () => {
  let irqs = 0;
  const i8042 = new I8042({ onReset: () => {}, keyboardInterrupt: { trigger: () => irqs++ } });
  const readAll = () => {
    const bytes: number[] = [];
    const data = new Uint8Array(1);
    for (;;) {
      i8042.read(4, data);
      if (!(data[0] & 1)) return bytes;
      i8042.read(0, data);
      bytes.push(data[0]);
    }
  };
  assert.equal(i8042.sendCtrlAltDel(), true);
  assert.equal(irqs, 1);
  assert.deepEqual(readAll(), [0x14, 0x11, 0xe0, 0x71]);
  // The guest turns translation on (command byte bit 6), as Linux's i8042 driver does.
  i8042.write(4, Uint8Array.of(0x60));
  i8042.write(0, Uint8Array.of(0x47));
  assert.equal(i8042.sendCtrlAltDel(), true);
  assert.deepEqual(readAll(), [0x1d, 0x38, 0xe0, 0x53]);
  // A guest that never reads: the buffer fills and the request is refused whole.
  for (let i = 0; i < 4; i++) i8042.sendCtrlAltDel();
  assert.equal(i8042.sendCtrlAltDel(), false);
  assert.equal(readAll().length, 16);
});
