import assert from "node:assert/strict";
import { validateDefinition } from "./definition.ts";
import { looksLikeXlCfg, parseXlCfg, XlCfgError } from "./xl_cfg.ts";
import { formatXlCfg } from "./xl_cfg_format.ts";

const HOST = { hostMemoryBytes: 8 * 1024 ** 3 };

/** Xen's tools/examples/xlexample.pvlinux, with the optional lines switched on. */
const XL_EXAMPLE_PVLINUX = `# =====================================================================
# Example PV Linux guest configuration
# =====================================================================
#
# This is a fairly minimal example of what is required for a
# Paravirtualised Linux guest. For a more complete guide see xl.cfg(5)

# Guest name
name = "example.pvlinux"

# 128-bit UUID for the domain as a hexadecimal number.
# Use "uuidgen" to generate one if required.
uuid = "3fb5b8e1-4ed2-4f4a-8a1f-6f0a2d1f1c2e"

# Kernel image to boot
kernel = "/boot/vmlinuz"

# Ramdisk (optional)
ramdisk = "/boot/initrd.gz"

# Kernel command line options
extra = "root=/dev/xvda1"

# Initial memory allocation (MB)
memory = 128

# Maximum memory (MB)
# If this is greater than \`memory' then the slack will start ballooned
# (this assumes guest kernel support for ballooning)
#maxmem = 512

# Number of VCPUS
vcpus = 2

# Network devices
# A list of 'vifspec' entries as described in
# docs/misc/xl-network-configuration.markdown
vif = [ '' ]

# Disk Devices
# A list of \`diskspec' entries as described in
# docs/misc/xl-disk-configuration.txt
disk = [ '/dev/vg/guest-volume,raw,xvda,rw' ]
`;

function parse(text: string, warnings: string[] = []) {
  return parseXlCfg(text, { baseDir: "/etc/xen", onWarning: (w) => warnings.push(w) });
}

function refused(text: string, line: number, message: string): void {
  assert.throws(() => parse(text), (error: unknown) => {
    assert.ok(error instanceof XlCfgError, `not an XlCfgError: ${error}`);
    assert.equal(error.message, message);
    assert.equal(error.line, line);
    return true;
  });
}

Deno.test("parseXlCfg() reads Xen's PV Linux example into a valid definition", () => {
  const warnings: string[] = [];
  const definition = validateDefinition(parse(XL_EXAMPLE_PVLINUX, warnings), HOST);
  assert.deepEqual(definition, {
    name: "example.pvlinux",
    uuid: "3fb5b8e1-4ed2-4f4a-8a1f-6f0a2d1f1c2e",
    vcpus: 2,
    memory: 128,
    boot: { kernel: "/boot/vmlinuz", initrd: "/boot/initrd.gz", cmdline: "root=/dev/xvda1" },
    disks: [{ path: "/dev/vg/guest-volume", format: "raw", readOnly: false, transport: "pci" }],
    nics: [{ tap: "auto", mac: definition.nics![0].mac, transport: "pci" }],
    rng: false,
    balloon: false,
    console: "serial",
    onPoweroff: "destroy",
    onReboot: "restart",
    onCrash: "destroy",
    autostart: false,
  });
  assert.deepEqual(warnings, [
    "the command line names /dev/xvda; here disks are virtio-blk: /dev/vda (in disk order)",
  ]);
});

Deno.test("parseXlCfg() reads every equivalent form of an xl disk spec", () => {
  const forms: [string, boolean | undefined][] = [
    ["'/dev/vg/guest-volume,raw,hda,rw'", false],
    ["'format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume'", false],
    ["'raw:/dev/vg/guest-volume,hda,w'", false],
    ["'vdev=hda,/dev/vg/guest-volume,raw'", undefined],
  ];
  for (const [form, readOnly] of forms) {
    const definition = parse(`kernel = "/k"\ndisk = [ ${form} ]`);
    const expected = { path: "/dev/vg/guest-volume", format: "raw" };
    assert.deepEqual(
      definition.disks,
      [readOnly === undefined ? expected : { ...expected, readOnly }],
      form,
    );
  }
  assert.deepEqual(parse(`kernel = "/k"\ndisk = [ '/dev/vg/guest-volume,,hda' ]`).disks, [
    { path: "/dev/vg/guest-volume" },
  ]);
  assert.deepEqual(
    parse(`kernel = "/k"\ndisk = [ 'phy:/dev/vg/lv,xvda,w', 'tap:qcow2:img.qcow2,xvdb,r' ]`).disks,
    [
      { path: "/dev/vg/lv", readOnly: false },
      { path: "/etc/xen/img.qcow2", format: "qcow2", readOnly: true },
    ],
  );
});

Deno.test("parseXlCfg() makes CD-ROMs read-only disks, in every spelling", () => {
  const forms = [
    "/root/image.iso,,hdc,cdrom",
    "/root/image.iso,,hdc,,cdrom",
    "/root/image.iso,raw,hdc,devtype=cdrom",
    "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
    "raw:/root/image.iso,hdc:cdrom,ro",
  ];
  for (const form of forms) {
    const warnings: string[] = [];
    const [disk] = parse(`kernel = "/k"\ndisk = [ '${form}' ]`, warnings).disks!;
    assert.equal(disk.path, "/root/image.iso", form);
    assert.equal(disk.readOnly, true, form);
    assert.deepEqual(warnings, [
      "xl.cfg line 2: disk[0]: the CD-ROM becomes a read-only virtio disk",
    ]);
  }
});

Deno.test("parseXlCfg() maps vif mac, bridge, vifname and rate", () => {
  const definition = parse(
    `kernel = "/k"\nvif = [ 'mac=00:16:3e:01:02:03, bridge=xenbr0, vifname=vif-web, rate=10Mb/s@20ms, type=vif', 'bridge=br1,rate=1MB/s' ]`,
  );
  assert.deepEqual(definition.nics, [
    { mac: "00:16:3e:01:02:03", bridge: "xenbr0", tap: "vif-web", rateLimit: "bw=1250000" },
    { bridge: "br1", rateLimit: "bw=1000000" },
  ]);
});

Deno.test("parseXlCfg() joins root and extra as xl does; cmdline wins over both", () => {
  assert.deepEqual(
    parse(`kernel = "k"\nroot = "/dev/vda1 ro"\nextra = "console=ttyS0 quiet"`).boot,
    { kernel: "/etc/xen/k", cmdline: "root=/dev/vda1 ro console=ttyS0 quiet" },
  );
  const warnings: string[] = [];
  assert.deepEqual(
    parse(`kernel = "/k"\nextra = "x"\ncmdline = "console=hvc0"`, warnings).boot,
    { kernel: "/k", cmdline: "console=hvc0" },
  );
  assert.deepEqual(warnings, [
    "xl.cfg line 3: cmdline is set, so root and extra are ignored (as xl does)",
    "the command line says console=hvc0 (Xen's console); Denovisor's console is ttyS0",
  ]);
});

Deno.test("parseXlCfg() reads the whole xl.cfg syntax", () => {
  const definition = parse(
    `name='a\\x41\\'b' ; memory = 0x100 # 256 MiB\nvcpus = "3"\nkernel = "/k"\n` +
      `disk = [\n  '/a.img',  # first\n  "/b.img",\n]\ndisk += [ '/c.img' ]\non_crash = 'preserve'\n`,
  );
  assert.equal(definition.name, "aA'b");
  assert.equal(definition.memory, 256);
  assert.equal(definition.vcpus, 3);
  assert.deepEqual(definition.disks!.map((d) => d.path), ["/a.img", "/b.img", "/c.img"]);
  assert.equal(definition.onCrash, "preserve");
});

Deno.test("parseXlCfg() ignores keys that only tune Xen, with a warning each", () => {
  const warnings: string[] = [];
  parse(`kernel = "/k"\nvnc = 1\ncpu_weight = 512`, warnings);
  assert.deepEqual(warnings, [
    "xl.cfg line 2: vnc tunes Xen itself and is ignored",
    "xl.cfg line 3: cpu_weight tunes Xen itself and is ignored",
  ]);
});

Deno.test("parseXlCfg() refuses every key it cannot honour, in one message", () => {
  refused(
    `kernel = "/k"\nbootloader = "pygrub"\npci = [ '0000:01:00.0' ]`,
    2,
    "xl.cfg line 2: Denovisor cannot honour bootloader (line 2), pci (line 3); remove them (docs/domain.md lists the xl.cfg keys that map)",
  );
});

Deno.test("parseXlCfg() reports syntax errors with their line", () => {
  refused(`name = "web`, 1, 'xl.cfg line 1: the string opened with " is not closed on its line');
  refused(`name "web"`, 1, "xl.cfg line 1: expected '=' after name");
  refused(
    `kernel = "/k"\ndisk = [ '/a',\n`,
    2,
    "xl.cfg line 2: the list opened here is not closed with ]",
  );
  refused(
    `memory = 1\nmemory = 2`,
    2,
    "xl.cfg line 2: memory is already set on line 1; set it once",
  );
  refused(`memory = 1 2`, 1, "xl.cfg line 1: unexpected '2' after the value of memory");
  refused(
    `memory = \n`,
    1,
    "xl.cfg line 1: expected a value (a quoted string, a number or a [list]), found the end of the line",
  );
  refused(
    `kernel = "/k"\nmemory = "lots"`,
    2,
    "xl.cfg line 2: memory: expected a whole number, got 'lots'",
  );
  refused(
    `kernel = "/k"\ndisk = '/a'`,
    2,
    "xl.cfg line 2: disk: expected a list such as [ '...' ]",
  );
});

Deno.test("parseXlCfg() escapes NUL, BOM and control characters it quotes in an error", () => {
  refused(
    `name = "web"\nmemory = \0`,
    2,
    "xl.cfg line 2: expected a value (a quoted string, a number or a [list]), found '\\x00'",
  );
  refused(
    `name = "web"\n\ufeffmemory = 1`,
    2,
    "xl.cfg line 2: expected a setting such as name = \"web\", found '\\ufeff'",
  );
  refused(
    `kernel = "/k"\nmemory = "\x1b[2J"`,
    2,
    "xl.cfg line 2: memory: expected a whole number, got '\\x1b[2J'",
  );
});

Deno.test("parseXlCfg() skips a byte-order mark at the start of the file", () => {
  const definition = parseXlCfg(`\ufeffname = "web"\nkernel = "/k"\nmemory = 64`, { baseDir: "/" });
  assert.equal(definition.name, "web");
});

Deno.test("parseXlCfg() refuses a line longer than 64 KiB before reading it", () => {
  refused(
    `kernel = "/k"\nextra = "${"a".repeat(50_000_000)}"\n`,
    2,
    "xl.cfg line 2: the line is 50000010 characters long; xl.cfg lines are limited to 65536",
  );
  // Without the limit, reading that line took the CLI 30 s and 1.7 GB.
  parseXlCfg(`kernel = "/k"\nextra = "${"a".repeat(60_000)}"\n`, { baseDir: "/" });
});

Deno.test("parseXlCfg() refuses values that do not map", () => {
  refused(
    `kernel = "/k"\ndisk = [ '/a.vhd,vhd,xvda' ]`,
    2,
    "xl.cfg line 2: disk[0]: format vhd is not one Denovisor reads (raw, qcow2); convert the image with qemu-img convert -O qcow2",
  );
  refused(
    `kernel = "/k"\ndisk = [ ',,hdc,cdrom' ]`,
    2,
    "xl.cfg line 2: disk[0]: no target; give the image path (an empty CD-ROM drive has no Denovisor equivalent)",
  );
  refused(
    `kernel = "/k"\ndisk = [ '/a,raw,xvda,rw,extra' ]`,
    2,
    "xl.cfg line 2: disk[0]: too many positional parameters at 'extra'",
  );
  refused(
    `kernel = "/k"\nvif = [ 'bridge=br0', 'script=vif-openvswitch' ]`,
    2,
    "xl.cfg line 2: vif[1]: script=vif-openvswitch is not run by Denovisor; it puts the tap on bridge= itself",
  );
  refused(
    `kernel = "/k"\nvif = [ 'rate=fast' ]`,
    2,
    "xl.cfg line 2: vif[0]: rate 'fast' is not a rate like 10MB/s or 100Mb/s",
  );
  refused(
    `kernel = "/k"\non_crash = "coredump-destroy"`,
    2,
    "xl.cfg line 2: on_crash: 'coredump-destroy' has no Denovisor equivalent; use destroy, restart, preserve, rename-restart",
  );
  refused(
    `kernel = "/k"\nmemory = 512\nmaxmem = 1024`,
    3,
    "xl.cfg line 3: maxmem = 1024 differs from memory = 512; Denovisor starts the domain with memory (the balloon can only shrink a domain): set memory to what it should get and remove maxmem",
  );
  refused(
    `name = "w"\ntype = "hvm"`,
    2,
    'xl.cfg line 2: type hvm without kernel boots firmware, which Denovisor does not have; add kernel = "/boot/vmlinuz"',
  );
});

Deno.test("looksLikeXlCfg() tells xl.cfg files from JSON definitions", () => {
  assert.equal(looksLikeXlCfg(XL_EXAMPLE_PVLINUX), true);
  assert.equal(looksLikeXlCfg(`name="a"`), true);
  assert.equal(looksLikeXlCfg(`  {"name": "a"}`), false);
  assert.equal(looksLikeXlCfg(`[1]`), false);
});

Deno.test("formatXlCfg() writes an xl.cfg that reads back to the same definition", () => {
  const original = validateDefinition(parse(XL_EXAMPLE_PVLINUX), HOST);
  const text = formatXlCfg(original);
  assert.deepEqual(validateDefinition(parse(text), HOST), original);
  const rich = validateDefinition({
    name: "web",
    boot: { kernel: "/k", cmdline: 'say "hi" \\ bye' },
    disks: [{ path: "/it's.img", readOnly: true, format: "qcow2" }, {
      volume: "v",
      rateLimit: "ops=5",
    }],
    nics: [{ tap: "tap0", bridge: "br0", rateLimit: "bw=1000" }],
    balloon: true,
  }, HOST);
  const written = formatXlCfg(rich);
  assert.match(written, /# not in xl.cfg: disks\[1\]: volume 'v' of pool 'default'/);
  assert.match(written, /# not in xl.cfg: balloon = true/);
  const back = validateDefinition(parse(written), HOST);
  assert.deepEqual(back.boot, rich.boot);
  assert.deepEqual(back.disks, [rich.disks![0]]);
  assert.deepEqual(back.nics, rich.nics);
});
