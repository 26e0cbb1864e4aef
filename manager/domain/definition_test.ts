import assert from "node:assert/strict";
import { DefinitionError, definitionMemoryBytes, validateDefinition } from "./definition.ts";

const GIB = 1024 ** 3;
const OPTIONS = { hostMemoryBytes: 8 * GIB };
const UUID = "0b5d3c1e-8f4a-4c2b-9e6d-1a2b3c4d5e6f";

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: "web", boot: { demo: true }, ...extra };
}

/** Asserts that validating `input` fails at `path` with exactly `message`. */
function refused(input: unknown, path: string, message: string, options = OPTIONS): void {
  assert.throws(() => validateDefinition(input, options), (error: unknown) => {
    assert.ok(error instanceof DefinitionError, `not a DefinitionError: ${error}`);
    assert.equal(error.message, message);
    assert.equal(error.path, path);
    return true;
  });
}

Deno.test("validateDefinition() fills in every default", () => {
  const definition = validateDefinition(
    base({ uuid: UUID.toUpperCase(), nics: [{}, { bridge: "br0" }], disks: [{ volume: "v" }] }),
    OPTIONS,
  );
  assert.deepEqual(definition, {
    name: "web",
    uuid: UUID,
    vcpus: 1,
    memory: 256,
    boot: { demo: true },
    disks: [{ pool: "default", volume: "v", readOnly: false, transport: "pci" }],
    nics: [
      { tap: "auto", mac: definition.nics![0].mac, transport: "pci" },
      { tap: "auto", bridge: "br0", mac: definition.nics![1].mac, transport: "pci" },
    ],
    rng: false,
    balloon: false,
    console: "serial",
    onPoweroff: "destroy",
    onReboot: "restart",
    onCrash: "destroy",
    autostart: false,
  });
  assert.match(definition.nics![0].mac!, /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.notEqual(definition.nics![0].mac, definition.nics![1].mac);
});

Deno.test("validateDefinition() generates a uuid and MACs stable per uuid and index", () => {
  const a = validateDefinition(base({ nics: [{}] }), OPTIONS);
  const b = validateDefinition(base({ nics: [{}] }), OPTIONS);
  assert.match(a.uuid!, /^[0-9a-f-]{36}$/);
  assert.notEqual(a.uuid, b.uuid);
  const again = validateDefinition(base({ uuid: a.uuid, nics: [{}] }), OPTIONS);
  assert.equal(again.nics![0].mac, a.nics![0].mac);
});

Deno.test("validateDefinition() of its own output is the same definition", () => {
  const first = validateDefinition(
    base({
      memory: "1.5G",
      vcpus: 4,
      boot: { kernel: "/boot/vmlinuz", initrd: "/boot/initrd.img" },
      disks: [{ path: "/var/img/a.qcow2", format: "qcow2", rateLimit: "bw=10M,ops=100" }],
      nics: [{ tap: "tap0", mac: "52:54:00:AA:BB:CC", rateLimit: "bw=1M" }],
      rng: { rateLimit: "bw=1M" },
      balloon: true,
      onCrash: "preserve",
      autostart: true,
    }),
    OPTIONS,
  );
  assert.equal(first.memory, 1536);
  assert.equal(definitionMemoryBytes(first), 1.5 * GIB);
  assert.equal(first.nics![0].mac, "52:54:00:aa:bb:cc");
  assert.deepEqual(first.boot, {
    kernel: "/boot/vmlinuz",
    initrd: "/boot/initrd.img",
    cmdline: "console=ttyS0 reboot=k panic=1",
  });
  assert.deepEqual(validateDefinition(JSON.parse(JSON.stringify(first)), OPTIONS), first);
});

Deno.test("validateDefinition() resolves relative paths against baseDir", () => {
  const definition = validateDefinition(
    base({ boot: { kernel: "k/vmlinux" }, disks: [{ path: "../img/a.raw" }] }),
    { ...OPTIONS, baseDir: "/etc/denovisor" },
  );
  assert.equal((definition.boot as { kernel: string }).kernel, "/etc/denovisor/k/vmlinux");
  assert.equal(definition.disks![0].path, "/etc/img/a.raw");
});

Deno.test("validateDefinition() refuses what is not an object", () => {
  refused([1], "", "expected an object, got an array");
});

Deno.test("validateDefinition() refuses unknown fields", () => {
  refused(
    base({ memroy: 512 }),
    "memroy",
    "memroy: unknown field; the known fields here are name, uuid, vcpus, memory, boot, disks, cdroms, nics, rng, balloon, console, onPoweroff, onReboot, onCrash, autostart, ha, placement, sandbox, cpu",
  );
  refused(
    base({ disks: [{ path: "/a", size: 1 }] }),
    "disks[0].size",
    "disks[0].size: unknown field; the known fields here are pool, volume, path, format, readOnly, serial, transport, rateLimit, bus",
  );
});

Deno.test("validateDefinition() refuses a missing or bad name", () => {
  refused({ boot: { demo: true } }, "name", "name: missing; every domain needs a name");
  refused(base({ name: 7 }), "name", "name: expected a string, got 7");
  refused(
    base({ name: "-web" }),
    "name",
    `name: "-web" is not a valid name; use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
  );
  refused(
    base({ name: "a/b" }),
    "name",
    `name: "a/b" is not a valid name; use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
  );
  refused(
    base({ name: "x".repeat(65) }),
    "name",
    `name: "${
      "x".repeat(40)
    }..." is not a valid name; use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
  );
});

Deno.test("validateDefinition() refuses a malformed uuid", () => {
  refused(
    base({ uuid: "1234" }),
    "uuid",
    'uuid: "1234" is not a UUID; write 8-4-4-4-12 hex digits or leave it out to get one',
  );
});

Deno.test("validateDefinition() refuses 0, 255 and fractional vCPUs", () => {
  refused(base({ vcpus: 0 }), "vcpus", "vcpus: 0 is not between 1 and 254");
  refused(base({ vcpus: 255 }), "vcpus", "vcpus: 255 is not between 1 and 254");
  refused(base({ vcpus: 1.5 }), "vcpus", "vcpus: expected a whole number, got 1.5");
  refused(base({ vcpus: "2" }), "vcpus", 'vcpus: expected a whole number, got "2"');
});

Deno.test("validateDefinition() refuses too little, too much and unreadable memory", () => {
  refused(base({ memory: 8 }), "memory", "memory: 8 MiB is below the minimum of 16 MiB");
  refused(
    base({ memory: "16G" }),
    "memory",
    "memory: 16384 MiB is more than this host's 8192 MiB of RAM",
  );
  refused(
    base({ memory: "lots" }),
    "memory",
    "memory: cannot read size 'lots'; write a number with an optional unit (K, M, G, T)",
  );
  refused(
    base({ memory: "1000000K" }),
    "memory",
    'memory: "1000000K" is not a whole number of MiB; round it to a multiple of 1M',
  );
  refused(
    base({ memory: true }),
    "memory",
    'memory: expected a number of MiB or a size such as "512M", got true',
  );
});

Deno.test("validateDefinition() refuses a boot that is neither a kernel nor the demo", () => {
  refused(
    base({ boot: undefined }),
    "boot",
    'boot: missing; give {"kernel": PATH} or {"demo": true}',
  );
  refused(
    base({ boot: {} }),
    "boot.kernel",
    'boot.kernel: missing; give a kernel path or "demo": true',
  );
  refused(
    base({ boot: { demo: true, kernel: "/k" } }),
    "boot.kernel",
    "boot.kernel: not with boot.demo; boot either the demo guest or a kernel",
  );
  refused(
    base({ boot: { kernel: "vmlinux" } }),
    "boot.kernel",
    'boot.kernel: "vmlinux" is not an absolute path; write the full path',
  );
  refused(
    base({ boot: { kernel: "/k", cmdline: "x".repeat(2048) } }),
    "boot.cmdline",
    "boot.cmdline: must be at most 2047 bytes without NUL characters",
  );
});

Deno.test("validateDefinition() refuses disks with wrong types", () => {
  refused(
    base({ disks: [{ path: "/a" }, { volume: 42 }] }),
    "disks[1].volume",
    "disks[1].volume: expected a string, got 42",
  );
  refused(base({ disks: {} }), "disks", "disks: expected an array, got an object");
  refused(
    base({ disks: [{ path: "/a", readOnly: "yes" }] }),
    "disks[0].readOnly",
    'disks[0].readOnly: expected true or false, got "yes"',
  );
});

Deno.test("validateDefinition() refuses a disk with both volume and path, or neither", () => {
  refused(
    base({ disks: [{ volume: "v", path: "/a" }] }),
    "disks[0]",
    "disks[0]: give either volume (with pool) or path, not both",
  );
  refused(base({ disks: [{}] }), "disks[0]", "disks[0]: give volume (with pool) or path");
  refused(
    base({ disks: [{ pool: "p", path: "/a" }] }),
    "disks[0].pool",
    "disks[0].pool: only with volume; a path needs no pool",
  );
});

Deno.test("validateDefinition() refuses the same image twice in one domain", () => {
  refused(
    base({ disks: [{ path: "/a" }, { path: "/b/../a" }] }),
    "disks[1].path",
    "disks[1].path: the same image as disks[0]; a domain may use an image once",
  );
});

Deno.test("validateDefinition() refuses unknown formats, transports and bad serials", () => {
  refused(
    base({ disks: [{ path: "/a", format: "vhd" }] }),
    "disks[0].format",
    'disks[0].format: "vhd" is not one of raw, qcow2',
  );
  refused(
    base({ nics: [{ transport: "isa" }] }),
    "nics[0].transport",
    'nics[0].transport: "isa" is not one of pci, mmio',
  );
  refused(
    base({ disks: [{ path: "/a", serial: "x".repeat(21) }] }),
    "disks[0].serial",
    `disks[0].serial: "${"x".repeat(21)}" must be at most 20 printable ASCII characters`,
  );
});

Deno.test("validateDefinition() refuses bad rate limits", () => {
  refused(
    base({ disks: [{ path: "/a", rateLimit: "bw=fast" }] }),
    "disks[0].rateLimit",
    'disks[0].rateLimit: Rate limit "bw=fast": bw=fast is not a positive amount (e.g. 1000, 512K, 10M)',
  );
  refused(
    base({ rng: { rateLimit: "iops=3" } }),
    "rng.rateLimit",
    'rng.rateLimit: Rate limit "iops=3": unknown key "iops"; use bw, ops, bw_burst or ops_burst',
  );
});

Deno.test("validateDefinition() refuses bad, multicast and duplicate MACs", () => {
  refused(
    base({ nics: [{ mac: "52:54:00:12:34" }] }),
    "nics[0].mac",
    'nics[0].mac: "52:54:00:12:34" is not a MAC address; write six hex pairs like 52:54:00:12:34:56',
  );
  refused(
    base({ nics: [{ mac: "01:00:5e:00:00:01" }] }),
    "nics[0].mac",
    "nics[0].mac: 01:00:5e:00:00:01 is a multicast address; use a unicast one (even first byte), e.g. 52:54:00:12:34:56",
  );
  refused(
    base({ nics: [{ mac: "52:54:00:00:00:01" }, { mac: "52:54:00:00:00:01" }] }),
    "nics[1].mac",
    "nics[1].mac: 52:54:00:00:00:01 is already nics[0]'s",
  );
});

Deno.test("validateDefinition() refuses bad tap and bridge names", () => {
  refused(
    base({ nics: [{ tap: "a-very-long-tap-name" }] }),
    "nics[0].tap",
    `nics[0].tap: "a-very-long-tap-name" is not an interface name (1-15 letters, digits, '_', '.', '-') or "auto"`,
  );
  refused(
    base({ nics: [{ bridge: "br 0" }] }),
    "nics[0].bridge",
    `nics[0].bridge: "br 0" is not an interface name (1-15 letters, digits, '_', '.', '-')`,
  );
});

Deno.test("validateDefinition() refuses unknown lifecycle actions", () => {
  refused(
    base({ onCrash: "coredump-destroy" }),
    "onCrash",
    'onCrash: "coredump-destroy" is not one of destroy, restart, preserve, rename-restart',
  );
});

Deno.test("validateDefinition() refuses more mmio devices than interrupt lines", () => {
  const disks = Array.from({ length: 9 }, (_, i) => ({ path: `/d${i}`, transport: "mmio" }));
  refused(
    base({ disks }),
    "",
    "9 devices on transport mmio, but at most 8 fit (one interrupt line each); put some on pci",
  );
});

Deno.test("validateDefinition() refuses a bad rng", () => {
  refused(
    base({ rng: "yes" }),
    "rng",
    'rng: expected true, false or {"rateLimit": SPEC}, got "yes"',
  );
});

Deno.test("validateDefinition() takes a firmware boot, its order, CD-ROMs and SATA disks", () => {
  const definition = validateDefinition(
    base({
      boot: { firmware: "seabios", order: ["cdrom", "disk"] },
      disks: [{ path: "/images/w.raw", bus: "sata" }],
      cdroms: ["/isos/install.iso"],
    }),
    OPTIONS,
  );
  assert.deepEqual(definition.boot, { firmware: "seabios", order: ["cdrom", "disk"] });
  assert.equal(definition.disks![0].bus, "sata");
  assert.deepEqual(definition.cdroms, ["/isos/install.iso"]);
  refused(
    base({ cdroms: ["/a.iso"] }),
    "cdroms",
    'cdroms: CD-ROMs and SATA disks need a firmware boot; give boot {"firmware": "seabios"}',
  );
  refused(
    base({ boot: { firmware: "seabios", kernel: "/k" } }),
    "boot.kernel",
    "boot.kernel: not with boot.firmware; the firmware loads the OS",
  );
  refused(
    base({ boot: { kernel: "/k", order: ["disk"] } }),
    "boot.order",
    "boot.order: only with boot.firmware: a kernel boot has no boot order",
  );
  refused(
    base({ boot: { firmware: "seabios", order: ["floppy"] } }),
    "boot.order[0]",
    'boot.order[0]: "floppy" is not "disk" or "cdrom"',
  );
  refused(
    base({ boot: { firmware: "seabios" }, cdroms: Array(7).fill("/a.iso") }),
    "cdroms",
    "cdroms: CD-ROMs and SATA disks share 6 AHCI ports",
  );
});
