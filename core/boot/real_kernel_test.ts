/**
 * Loads Debian's stock Linux 6.1 bzImage. The kernel is not in the repository: run
 * `tests/fixtures/fetch_debian_kernel.sh` once (it caches it outside the tree).
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { CMDLINE_START, ZERO_PAGE_START } from "../layout.ts";
import { parseBzImage } from "./bzimage.ts";
import { configureBoot } from "./linux_boot.ts";
import { XLF_CAN_BE_LOADED_ABOVE_4G, XLF_KERNEL_64 } from "./setup_header.ts";

const MiB = 1024 * 1024;
const fixturesDir = Deno.env.get("DENOVISOR_FIXTURES") ?? "/var/cache/denovisor/fixtures";
const kernelPath = `${fixturesDir}/vmlinuz`;

function readFixture(): Uint8Array {
  try {
    return Deno.readFileSync(kernelPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        `Missing test kernel ${kernelPath}; run tests/fixtures/fetch_debian_kernel.sh first`,
      );
    }
    throw error;
  }
}

Deno.test("parseBzImage() reads the header of Debian's Linux 6.1 kernel", () => {
  const { header, kernelOffset, kernelSize } = parseBzImage(readFixture());
  assert.equal(header.version, 0x020f, "Linux 6.1 speaks boot protocol 2.15");
  assert.equal(header.loadflags & 1, 1, "LOADED_HIGH");
  assert.equal(header.xloadflags & XLF_KERNEL_64, XLF_KERNEL_64);
  assert.equal(header.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G, XLF_CAN_BE_LOADED_ABOVE_4G);
  assert.equal(header.relocatableKernel, true);
  assert.equal(header.kernelAlignment, 0x200000);
  assert.equal(header.prefAddress, 0x1000000);
  assert.equal(header.cmdlineSize, 2047);
  assert.equal(header.code32Start, 0x100000);
  assert.ok(header.initSize > kernelSize, "init_size covers the decompressed kernel");
  assert.ok(header.syssize * 16 <= kernelSize);
  assert.equal(kernelOffset, (header.setupSects + 1) * 512);
});

Deno.test("configureBoot() loads Debian's Linux 6.1 kernel into 512 MiB", () => {
  const kernel = readFixture();
  const mem = GuestMemory.ofSize(512 * MiB);
  const initrd = new Uint8Array(3 * MiB).fill(0x5a);
  const setup = configureBoot(mem, {
    kernel,
    initrd,
    cmdline: "console=ttyS0 noxsave",
    cpus: 2,
    kernelPath,
  });
  assert.equal(setup.kind, "long64");
  if (setup.kind !== "long64") return;
  assert.equal(setup.entry, 0x100200);
  const { kernelOffset, header } = parseBzImage(kernel);
  assert.deepEqual(mem.read(0x100000, 4096), kernel.subarray(kernelOffset, kernelOffset + 4096));
  assert.equal(setup.kernelEnd, header.prefAddress + header.initSize);
  assert.equal(mem.readU16(ZERO_PAGE_START + 0x206), 0x020f);
  assert.equal(mem.readU8(ZERO_PAGE_START + 0x210), 0xff);
  assert.equal(mem.readU32(ZERO_PAGE_START + 0x228), CMDLINE_START);
  assert.ok(setup.initrd!.address >= setup.kernelEnd);
  assert.ok(setup.initrd!.address + initrd.length <= 512 * MiB);
  assert.ok(setup.initrd!.address + initrd.length - 1 <= header.initrdAddrMax);
});
