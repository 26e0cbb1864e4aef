/**
 * Every virtio device end to end: a guest driver from guests/ talks to Denovisor's
 * device over virtio-pci and over virtio-mmio, with each interrupt path, and the host
 * side (disk file, tap) is checked independently of what the guest says.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { denovisor, guest, StreamingCli } from "./cli_support.ts";
import { PacketSocket } from "../devices/net/testing/packet_socket.ts";

const SECTOR = 512;

/** The pattern guests/virtio_blk.c writes to `sector` with `seed`. */
function guestPattern(sector: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: SECTOR }, (_, i) => (sector * 7 + i + seed) & 0xff);
}

async function withDisk(sizeMiB: number, fn: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ dir: "/var/tmp", prefix: "denovisor-disk-" });
  try {
    await Deno.truncate(path, sizeMiB * 1024 * 1024);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

function assertGuestPassed(r: { code: number; stdout: string; stderr: string }, name: string) {
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, new RegExp(`${name}: all passed \\(0 failures\\)`));
  assert.doesNotMatch(r.stdout, /^FAIL/m);
}

for (
  const [transport, irq] of [["pci", "msix"], ["pci", "intx"], ["mmio", "irq"], ["mmio", "poll"]]
) {
  kvmTest(
    `virtio-blk over ${transport} (${irq}): write, read back, flush, discard, get-id`,
    async () => {
      await withDisk(16, async (path) => {
        const r = await denovisor([
          "run",
          "--kernel",
          guest("virtio_blk"),
          "--disk",
          `${path},serial=DV-TEST-1,transport=${transport}`,
          "--cmdline",
          `irq=${irq}`,
        ]);
        assertGuestPassed(r, "virtio_blk");
        assert.match(r.stdout, /capacity 32768 sectors/);
        assert.match(r.stdout, /DV-TEST-1/);
        // The host sees what the guest wrote: sector 0 with seed 1, the middle one with seed 2.
        const file = await Deno.readFile(path);
        assert.deepEqual(file.subarray(0, SECTOR), guestPattern(0, 1));
        const middle = 16384;
        assert.deepEqual(
          file.subarray(middle * SECTOR, (middle + 1) * SECTOR),
          guestPattern(middle, 2),
        );
      });
    },
  );
}

kvmTest(
  "a read-only virtio-blk disk offers BLK_F_RO, refuses writes and is left unchanged",
  async () => {
    await withDisk(4, async (path) => {
      const before = crypto.getRandomValues(new Uint8Array(4096));
      const file = await Deno.open(path, { write: true });
      await file.write(before);
      file.close();
      const r = await denovisor([
        "run",
        "--kernel",
        guest("virtio_blk"),
        "--disk",
        `${path},readonly`,
        "--cmdline",
        "readonly=1",
      ]);
      assertGuestPassed(r, "virtio_blk");
      assert.deepEqual((await Deno.readFile(path)).subarray(0, 4096), before);
    });
  },
);

for (const transport of ["pci", "mmio"]) {
  kvmTest(`virtio-rng over ${transport} returns fresh random bytes`, async () => {
    const r = await denovisor([
      "run",
      "--kernel",
      guest("virtio_rng"),
      "--rng",
      "--transport",
      transport,
    ]);
    assertGuestPassed(r, "virtio_rng");
  });

  kvmTest(`virtio-balloon over ${transport} inflates and deflates`, async () => {
    const r = await denovisor([
      "run",
      "--kernel",
      guest("virtio_balloon"),
      "--balloon",
      "--transport",
      transport,
      "--cmdline",
      "pages=512 wait_ms=200",
    ]);
    assertGuestPassed(r, "virtio_balloon");
  });
}

for (const transport of ["pci", "mmio"]) {
  kvmTest(
    `virtio-console over ${transport} carries output and echoes stdin lines back`,
    async () => {
      const vm = new StreamingCli(
        ["run", "--kernel", guest("virtio_console"), "--virtio-console", "--transport", transport],
        { stdin: "piped" },
      );
      let status: Deno.CommandStatus;
      try {
        await vm.readUntil(/virtio_console: ready/);
        const writer = vm.child.stdin.getWriter();
        await writer.write(new TextEncoder().encode("hello over virtio\nquit\n"));
        await writer.close();
        await vm.readUntil(/virtio_console: (all passed|FAILED)/);
      } finally {
        status = await vm.finish();
      }
      assert.match(vm.text, /vcon-echo: hello over virtio/);
      assert.match(vm.text, /virtio_console: all passed/);
      assert.equal(status.code, 0);
    },
  );
}

for (const transport of ["pci", "mmio"]) {
  kvmTest(
    `virtio-net over ${transport}: frames cross the tap both ways, byte for byte`,
    async () => {
      const tap = `dvt${crypto.getRandomValues(new Uint16Array(1))[0].toString(16)}`;
      const ip = (...args: string[]) => new Deno.Command("ip", { args }).output();
      assert.equal((await ip("tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr")).code, 0);
      try {
        assert.equal((await ip("link", "set", tap, "up")).code, 0);
        using host = new PacketSocket(tap);
        const main = new URL("../main.ts", import.meta.url).pathname;
        const mac = "52:54:00:dd:00:01";
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            main,
            "run",
            "--kernel",
            guest("virtio_net"),
            "--nic",
            `tap=${tap},mac=${mac},transport=${transport}`,
            "--cmdline",
            "tx=3 rx=3 timeout=30",
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const isTest = (f: Uint8Array) => f.length >= 14 && f[12] === 0x88 && f[13] === 0xb5;
        const fromGuest: string[] = [];
        for (let i = 0; i < 3; i++) {
          const frame = await host.receiveMatching(isTest, 30_000);
          assert.ok(frame, `guest frame ${i} arrived`);
          assert.deepEqual([...frame.subarray(6, 12)], [0x52, 0x54, 0x00, 0xdd, 0x00, 0x01]);
          fromGuest.push(new TextDecoder().decode(frame.subarray(14)).replace(/\0+$/, ""));
        }
        assert.deepEqual(fromGuest, [
          "denovisor-frame-0",
          "denovisor-frame-1",
          "denovisor-frame-2",
        ]);
        for (let i = 0; i < 3; i++) {
          const payload = new TextEncoder().encode(`host-frame-${i}`);
          const frame = new Uint8Array(Math.max(60, 14 + payload.length));
          frame.set([0x52, 0x54, 0x00, 0xdd, 0x00, 0x01, 0x02, 0, 0, 0, 0, 0x99, 0x88, 0xb5]);
          frame.set(payload, 14);
          host.send(frame);
        }
        const { code, stdout } = await child.output();
        const out = new TextDecoder().decode(stdout);
        assert.match(out, /host-frame-0/);
        assert.match(out, /host-frame-2/);
        assert.match(out, /virtio_net: all passed/);
        assert.equal(code, 0, out);
      } finally {
        await ip("link", "del", tap);
      }
    },
  );
}

/** Rss in KiB of the VMM's guest-RAM mapping (the anonymous mapping of `bytes` bytes). */
async function guestRamRssKiB(pid: number, bytes: number): Promise<number> {
  const smaps = await Deno.readTextFile(`/proc/${pid}/smaps`);
  const blocks = smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
  for (const block of blocks) {
    const [start, end] = block.slice(0, block.indexOf(" ")).split("-").map((h) => parseInt(h, 16));
    if (end - start === bytes) return Number(/^Rss:\s+(\d+) kB/m.exec(block)?.[1] ?? NaN);
  }
  throw new Error(`no ${bytes}-byte mapping in /proc/${pid}/smaps`);
}

Deno.test("run refuses --rng-limit without --rng, and a malformed one, with status 2", async () => {
  const without = await denovisor(["run", "--kernel", guest("virtio_rng"), "--rng-limit", "ops=1"]);
  assert.equal(without.code, 2, without.stderr);
  assert.match(without.stderr, /--rng-limit: add --rng for the device it limits/);
  const malformed = await denovisor([
    "run",
    "--kernel",
    guest("virtio_rng"),
    "--rng",
    "--rng-limit",
    "ops=x",
  ]);
  assert.equal(malformed.code, 2, malformed.stderr);
  assert.match(malformed.stderr, /--rng-limit: Rate limit "ops=x": ops=x is not a positive amount/);
});

kvmTest("virtio-rng under --rng-limit holds a request until the limiter refills", async () => {
  // One operation per 4 s: the guest's first read is served at once, its second waits for
  // the refill (well within the guest's 10 s timeout per read) and is then served in full.
  const limit = JSON.stringify({ ops: { size: 1, refill_time: 4000 } });
  const started = performance.now();
  const r = await denovisor([
    "run",
    "--kernel",
    guest("virtio_rng"),
    "--rng",
    "--rng-limit",
    limit,
  ]);
  const seconds = (performance.now() - started) / 1000;
  assertGuestPassed(r, "virtio_rng");
  // A lower bound only: a busy host makes the run longer, never shorter.
  assert.ok(seconds >= 3.5, `the run took ${seconds.toFixed(1)} s; the limit was not applied`);
});

kvmTest("inflating the balloon gives the guest's pages back to the host (RSS drops)", async () => {
  const memory = 128 * 1024 * 1024;
  const pages = 4096; // 16 MiB
  const vm = new StreamingCli([
    ...["run", "--kernel", guest("virtio_balloon"), "--balloon", "--memory", "128M"],
    ...["--cmdline", `pages=${pages} touched_wait_ms=1500 wait_ms=1500`],
  ]);
  let status: Deno.CommandStatus;
  try {
    // Each line is the signal: the guest prints it after touching its pages (faulted in as
    // it wrote them), or after the device returned its inflate buffers (madvised before
    // they were returned). smaps walks the page tables, so Rss is exact at once; reading
    // at once also keeps the read inside the 1.5 s the guest holds each state.
    await vm.readUntil(/holding \d+ touched pages/);
    const touched = await guestRamRssKiB(vm.child.pid, memory);
    await vm.readUntil(/holding \d+ inflated pages/);
    const inflated = await guestRamRssKiB(vm.child.pid, memory);
    // The guest's 16 MiB left the host's memory (allow for pages the guest touched meanwhile).
    assert.ok(touched - inflated >= (pages * 4 * 9) / 10, `RSS ${touched} KiB -> ${inflated} KiB`);
    await vm.readUntil(/virtio_balloon: (all passed|FAILED)/);
  } finally {
    status = await vm.finish();
  }
  assert.match(vm.text, /virtio_balloon: all passed/);
  assert.equal(status.code, 0);
});
