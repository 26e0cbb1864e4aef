import assert from "node:assert/strict";
import { guestRssKiB, StatsRecorder, statusFieldKiB } from "./stats_hook.ts";
import { bytesAtAddress, HostMapping } from "../ffi/mman.ts";

const assertAtLeast = (actual: number, floor: number) =>
  assert.ok(actual >= floor, `${actual} is below ${floor}`);

const SMAPS = `55d0c0a00000-55d0c0a21000 r--p 00000000 08:01 1234 /usr/bin/deno
Size:                132 kB
Rss:                 128 kB
7f0000000000-7f0008000000 rw-p 00000000 00:00 0
Size:             131072 kB
KernelPageSize:        4 kB
Rss:                2048 kB
Pss:                2048 kB
7f0008000000-7f0010000000 rw-p 00000000 00:00 0
Size:             131072 kB
Rss:                 512 kB
7f0010000000-7f0010100000 rw-p 00000000 00:00 0
Size:               1024 kB
Rss:                1024 kB
7fff00000000-7fff00021000 rw-p 00000000 00:00 0 [stack]
Size:                132 kB
Rss:                  64 kB
`;

Deno.test("guestRssKiB() sums the VMAs a RAM mapping was split into, and nothing else", () => {
  // One 256 MiB range at 0x7f0000000000, split in two VMAs; the 1 MiB after it is not RAM.
  const ram = [{ hostAddress: 0x7f0000000000n, size: 256 * 1024 * 1024 }];
  assert.equal(guestRssKiB(SMAPS, ram), 2048 + 512);
});

Deno.test("guestRssKiB() adds several RAM ranges and ignores a VMA that only overlaps one", () => {
  const ranges = [
    { hostAddress: 0x7f0008000000n, size: 128 * 1024 * 1024 },
    { hostAddress: 0x7f0010000000n, size: 1024 * 1024 },
  ];
  assert.equal(guestRssKiB(SMAPS, ranges), 512 + 1024);
  // A range that covers only half of a VMA does not claim its pages.
  assert.equal(guestRssKiB(SMAPS, [{ hostAddress: 0x7f0000000000n, size: 1 << 20 }]), 0);
  assert.equal(guestRssKiB(SMAPS, []), 0);
});

Deno.test("statusFieldKiB() reads VmHWM and VmRSS and says undefined for a missing field", () => {
  const status = "Name:\tdeno\nVmHWM:\t   70212 kB\nVmRSS:\t   65000 kB\n";
  assert.equal(statusFieldKiB(status, "VmHWM"), 70212);
  assert.equal(statusFieldKiB(status, "VmRSS"), 65000);
  assert.equal(statusFieldKiB(status, "VmSwap"), undefined);
});

Deno.test("StatsRecorder measures the touched part of mapped RAM and writes the report", () => {
  const size = 8 * 1024 * 1024;
  using mapping = HostMapping.anonymous(size, { guestRam: true }); // as guest RAM is mapped
  bytesAtAddress(mapping.address, size).fill(1, 0, 4 * 1024 * 1024); // touch 4 MiB of it
  const path = Deno.makeTempFileSync({ suffix: ".json" });
  try {
    const recorder = new StatsRecorder(path);
    const ram = { ranges: [{ hostAddress: mapping.address, size }] };
    recorder.noteMachine({ ram, vcpuStats: [{ exits: 5 }, { exits: 7 }] });
    recorder.noteMachine({ ram, vcpuStats: [{ exits: 1 }] });
    recorder.write();
    const report = JSON.parse(Deno.readTextFileSync(path));
    assert.equal(report.exits, 13);
    assert.equal(report.machines, 2);
    // Exactly the touched pages (KSM could only lower it, and merges slowly, if at all).
    assert.ok(report.guestRssKiB <= 4096 && report.guestRssKiB >= 2048, `${report.guestRssKiB}`);
    assertAtLeast(report.vmHwmKiB, report.guestRssKiB);
    assertAtLeast(report.vmRssKiB, report.guestRssKiB);
    assertAtLeast(report.wallSeconds, 0);
  } finally {
    Deno.removeSync(path);
  }
});
