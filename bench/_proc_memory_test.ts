import assert from "node:assert/strict";
import { guestMappingRssKiB, statusFieldKiB } from "./_proc_memory.ts";

const SMAPS = `7f0e00000000-7f0e1fdc0000 rwxp 00000000 00:00 0
Size:             521984 kB
Rss:                  64 kB
7f0e20000000-7f0e30000000 rw-p 00000000 00:00 0 
Size:             262144 kB
KernelPageSize:        4 kB
Rss:                 336 kB
7f0e38030000-7f0e48000000 ---p 00000000 00:00 0
Size:             262144 kB
Rss:                   0 kB
5600aa000000-5600ba000000 rw-p 00000000 08:01 1234   /usr/lib/some.so
Size:             262144 kB
Rss:                 900 kB
`;

Deno.test("guestMappingRssKiB() picks the anonymous read-write mapping of the guest's size", () => {
  assert.equal(guestMappingRssKiB(SMAPS, 262144), 336);
});

Deno.test("guestMappingRssKiB() is undefined when no mapping has the guest's size", () => {
  assert.equal(guestMappingRssKiB(SMAPS, 131072), undefined);
});

Deno.test("guestMappingRssKiB() is undefined when two mappings could be the guest's", () => {
  const twice = SMAPS +
    "7f0f00000000-7f0f10000000 rw-p 00000000 00:00 0\nSize: 262144 kB\nRss: 5 kB\n";
  assert.equal(guestMappingRssKiB(twice, 262144), undefined);
});

Deno.test("statusFieldKiB() reads a kB field of /proc/<pid>/status", () => {
  const status = "Name:\tdeno\nVmPeak:\t 999 kB\nVmHWM:\t   68808 kB\nVmRSS:\t   68340 kB\n";
  assert.equal(statusFieldKiB(status, "VmHWM"), 68808);
  assert.equal(statusFieldKiB(status, "VmRSS"), 68340);
  assert.equal(statusFieldKiB(status, "VmSwap"), undefined);
});
