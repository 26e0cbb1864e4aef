import assert from "node:assert/strict";
import { checkBootFits } from "./boot_check.ts";
import { BootImageError } from "./boot_error.ts";
import { buildBzImage } from "./_test_images.ts";

const MiB = 1024 * 1024;

Deno.test("checkBootFits() refuses a kernel and initrd that do not fit, as a start would", () => {
  assert.throws(
    () =>
      checkBootFits(
        { kernel: buildBzImage(), initrd: new Uint8Array(8 * MiB), cmdline: "", cpus: 1 },
        24 * MiB,
      ),
    (error) =>
      error instanceof BootImageError &&
      /kernel \(19 MiB\) and initrd \(8 MiB\) do not fit in 24 MiB of guest memory/.test(
        error.message,
      ),
  );
});

Deno.test("checkBootFits() passes a kernel that fits, even in a guest of several GiB", () => {
  const kernelEnd = checkBootFits({ kernel: buildBzImage(), cmdline: "", cpus: 2 }, 6 * 1024 * MiB);
  assert.ok(kernelEnd > MiB && kernelEnd < 64 * MiB, `kernel ends at ${kernelEnd}`);
});

Deno.test("checkBootFits() refuses a file that is no kernel", () => {
  assert.throws(
    () => checkBootFits({ kernel: new Uint8Array(4096), cmdline: "", cpus: 1 }, 64 * MiB),
    BootImageError,
  );
});
