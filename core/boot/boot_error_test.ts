import assert from "node:assert/strict";
import { BootImageError } from "./boot_error.ts";
import { EXIT_STATUS, HTTP_STATUS } from "../../common/errors.ts";

Deno.test("BootImageError words its memory remedy for each front end", () => {
  const error = new BootImageError("kernel and initrd do not fit in 16 MiB", "raise");
  assert.equal(error.message, "kernel and initrd do not fit in 16 MiB; raise --memory");
  assert.equal(error.messageFor("memory"), "kernel and initrd do not fit in 16 MiB; raise memory");
  assert.equal(error.code, "invalid");
  assert.equal(HTTP_STATUS[error.code], 400);
  assert.equal(EXIT_STATUS[error.code], 6);
  const elf = new BootImageError("segment 0 is outside guest RAM", "raise-or-check-load-address");
  assert.equal(
    elf.messageFor("memory"),
    "segment 0 is outside guest RAM; raise memory or check the kernel's load address",
  );
  const plain = new BootImageError("not a kernel");
  assert.equal(plain.messageFor("memory"), "not a kernel");
});

Deno.test("BootImageError.about() names the file and keeps the remedy", () => {
  const error = new BootImageError("bzImage needs more RAM", "raise").about("/k/vmlinuz");
  assert.equal(error.message, "/k/vmlinuz: bzImage needs more RAM; raise --memory");
  assert.equal(error.messageFor("memory"), "/k/vmlinuz: bzImage needs more RAM; raise memory");
  assert.equal(String(error), "BootImageError: /k/vmlinuz: bzImage needs more RAM; raise --memory");
});
