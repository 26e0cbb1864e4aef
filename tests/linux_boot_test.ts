/**
 * The minimal Linux kernel from guests/linux/ boots under Denovisor. Guest kernel code
 * is emulated on the test hosts (HOST_FACTS.md), so the quick tests stop once the early
 * boot lines are out; one test lets the kernel run through device probing to its
 * "no root filesystem" panic.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { Kvm } from "../core/kvm.ts";
import { buildMachine } from "../vmm/builder.ts";
import { TextSink } from "./text_sink.ts";
import { denovisor } from "./cli_support.ts";

const CACHE = Deno.env.get("DENOVISOR_LINUX_CACHE") || "/var/cache/denovisor/linux";
/** What the test hosts' emulator needs (guests/linux/README.md explains each). */
const HOST_WORKAROUNDS = "noxsave clearcpuid=smap,smep,popcnt 8250.nr_uarts=1";
const CMDLINE = `console=ttyS0 earlyprintk=serial,ttyS0,115200 ${HOST_WORKAROUNDS} panic=-1`;

async function kernel(name: "vmlinux" | "bzImage"): Promise<Uint8Array> {
  const path = `${CACHE}/latest/${name}`;
  try {
    return await Deno.readFile(path);
  } catch {
    throw new Error(`${path} is missing: build the test kernel with guests/linux/build.sh`);
  }
}

/** Boots `image` until `until` appears on the console, then stops the VM. */
async function bootUntil(
  image: Uint8Array,
  options: {
    memoryMiB: number;
    cpus: number;
    cmdline: string;
    until: RegExp;
    initrd?: Uint8Array;
  },
): Promise<string> {
  const sink = new TextSink();
  using kvm = Kvm.open();
  const machine = buildMachine(kvm, {
    kernel: image,
    initrd: options.initrd,
    cmdline: options.cmdline,
    memoryBytes: options.memoryMiB * 1024 * 1024,
    cpus: options.cpus,
    console: sink,
  });
  try {
    machine.start();
    const ended = machine.ended.then((reason) => {
      throw new Error(`VM ended early (${JSON.stringify(reason)}):\n${sink.text}`);
    });
    await Promise.race([sink.waitFor(options.until, 120_000), ended]);
    return sink.text;
  } finally {
    machine.stop("test over");
    await machine.close();
  }
}

kvmTest("Linux (vmlinux, PVH) prints its banner, our command line and our memory map", async () => {
  const log = await bootUntil(await kernel("vmlinux"), {
    memoryMiB: 192,
    cpus: 2,
    cmdline: `${CMDLINE} denovisor.test=pvh`,
    until: /smpboot: Allowing \d+ CPUs/,
  });
  assert.match(log, /Linux version 6\.1\.\d+/);
  assert.match(log, /Command line: .*denovisor\.test=pvh/);
  assert.match(log, /BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff\] usable/);
  assert.match(log, /BIOS-e820: \[mem 0x000000000009fc00-0x00000000000fffff\] reserved/);
  assert.match(log, /BIOS-e820: \[mem 0x0000000000100000-0x000000000bffffff\] usable/);
  assert.match(log, /Hypervisor detected: KVM/);
  assert.match(log, /found SMP MP-table at \[mem 0x000f0000-0x000f000f\]/);
  assert.match(log, /smpboot: Allowing 2 CPUs/);
});

kvmTest("Linux (bzImage, 64-bit boot protocol) gets boot_params with our e820 map", async () => {
  const log = await bootUntil(await kernel("bzImage"), {
    memoryMiB: 128,
    cpus: 1,
    cmdline: `${CMDLINE} denovisor.test=bzimage`,
    until: /BIOS-e820: \[mem 0x0000000000100000-0x[0-9a-f]{16}\] usable/,
  });
  assert.match(log, /Linux version 6\.1\.\d+/);
  assert.match(log, /Command line: .*denovisor\.test=bzimage/);
  assert.match(log, /BIOS-e820: \[mem 0x0000000000100000-0x0000000007ffffff\] usable/);
});

for (const image of ["vmlinux", "bzImage"] as const) {
  kvmTest(
    `Linux (${image}) finds the initrd where Denovisor put it: at the top of low RAM`,
    async () => {
      const initrd = new Uint8Array(1024 * 1024).map((_, i) => i * 7);
      const log = await bootUntil(await kernel(image), {
        memoryMiB: 128,
        cpus: 1,
        cmdline: CMDLINE,
        initrd,
        until: /RAMDISK: \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]/,
      });
      // 1 MiB, page-aligned, as high as possible below the end of 128 MiB of RAM.
      assert.match(log, /RAMDISK: \[mem 0x07f00000-0x07ffffff\]/);
    },
  );
}

kvmTest(
  "Linux probes the serial port, i8042 and RTC, then reboots on its root-fs panic",
  async () => {
    const path = `${CACHE}/latest/vmlinux`;
    await kernel("vmlinux");
    const r = await denovisor(
      ["run", "--kernel", path, "--memory", "128M", "--cmdline", CMDLINE],
      { timeoutMs: 400_000 },
    );
    assert.match(
      r.stdout,
      /serial8250: ttyS0 at I\/O 0x3f8 \(irq = 4, base_baud = 115200\) is a 16550A/,
    );
    assert.match(r.stdout, /serio: i8042 KBD port at 0x60,0x64 irq 1/);
    assert.match(r.stdout, /rtc_cmos rtc_cmos: registered as rtc0/);
    assert.match(r.stdout, /Kernel panic - not syncing: VFS: Unable to mount root fs/);
    // panic=-1 reboots at once; `run` ends on a reset with status 0.
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout.slice(-800)}`);
  },
  420_000,
);

kvmTest(
  "Linux's own virtio drivers probe our disks and NICs over PCI and MMIO",
  async () => {
    const path = `${CACHE}/latest/vmlinux`;
    await kernel("vmlinux");
    const disk = await Deno.makeTempFile({ dir: "/var/tmp", prefix: "denovisor-linux-disk-" });
    const disk2 = await Deno.makeTempFile({ dir: "/var/tmp", prefix: "denovisor-linux-disk-" });
    try {
      await Deno.truncate(disk, 64 * 1024 * 1024);
      await Deno.truncate(disk2, 8 * 1024 * 1024);
      // A static, link-local address only makes the kernel name the NIC and its MAC. The
      // command-line (mmio) NIC is probed first and becomes eth0; the PCI one is eth1.
      const ip = "ip=169.254.10.2::169.254.10.1:255.255.0.0::eth1:off";
      const r = await denovisor(
        [
          "run",
          "--kernel",
          path,
          "--memory",
          "128M",
          "--disk",
          disk,
          "--disk",
          `${disk2},readonly,transport=mmio`,
          "--nic",
          "tap=auto,mac=52:54:00:12:34:56",
          "--nic",
          "tap=auto,mac=52:54:00:12:34:57,transport=mmio",
          "--cmdline",
          `${CMDLINE} ${ip}`,
        ],
        { timeoutMs: 400_000 },
      );
      assert.match(r.stdout, /pci 0000:00:01\.0: \[1af4:1042\] type 00 class 0x010000/);
      assert.match(r.stdout, /pci 0000:00:02\.0: \[1af4:1041\] type 00 class 0x020000/);
      // Linux probes the command-line virtio-mmio devices first: the PCI disk is vdb.
      assert.match(
        r.stdout,
        /virtio_blk virtio\d: \[vdb\] 131072 512-byte logical blocks \(67\.1 MB\/64\.0 MiB\)/,
      );
      assert.match(r.stdout, /device=eth1, hwaddr=52:54:00:12:34:56, ipaddr=169\.254\.10\.2/);
      // The second disk and NIC sit on virtio-mmio, announced on the command line.
      assert.match(
        r.stdout,
        /virtio_mmio\.device=4K@0xd0000000:5 virtio_mmio\.device=4K@0xd0001000:6/,
      );
      assert.match(r.stdout, /Registering device virtio-mmio\.0 at 0xd0000000-0xd0000fff, IRQ 5/);
      assert.match(r.stdout, /\[vda\] 16384 512-byte logical blocks \(8\.39 MB\/8\.00 MiB\)/);
      assert.equal(r.code, 0, `${r.stderr}\n${r.stdout.slice(-800)}`);
    } finally {
      await Deno.remove(disk);
      await Deno.remove(disk2);
    }
  },
  420_000,
);
