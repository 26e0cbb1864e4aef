import assert from "node:assert/strict";
import { denovisorArgs, median, qemuGuestArgs, timedOutput, writeRandomImage } from "./_support.ts";

Deno.test("median() takes the middle value, or the mean of the middle two", () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), RangeError);
});

Deno.test("qemuGuestArgs() boots the kernel with debug-exit, then takes append, RAM and serial", () => {
  const plain = qemuGuestArgs("/g.elf");
  assert.deepEqual(plain.slice(plain.indexOf("-kernel"), plain.indexOf("-kernel") + 2), [
    "-kernel",
    "/g.elf",
  ]);
  assert.ok(plain.includes("isa-debug-exit,iobase=0xf4,iosize=0x04"));
  assert.equal(plain[plain.indexOf("-m") + 1], "256");
  assert.equal(plain[plain.indexOf("-serial") + 1], "stdio");
  assert.ok(!plain.includes("-append"));
  const set = qemuGuestArgs("/g.elf", { append: "mib=4", memoryMiB: 64, serial: "null" });
  assert.equal(set[set.indexOf("-append") + 1], "mib=4");
  assert.equal(set[set.indexOf("-m") + 1], "64");
  assert.equal(set[set.indexOf("-serial") + 1], "null");
});

Deno.test("denovisorArgs() runs main.ts from the repository with the given verb", () => {
  const args = denovisorArgs("run", "--kernel", "k");
  assert.deepEqual(args.slice(0, 2), ["run", "-A"]);
  assert.match(args[2], /\/main\.ts$/);
  assert.deepEqual(args.slice(3), ["run", "--kernel", "k"]);
});

Deno.test("writeRandomImage() writes that many bytes, not zeroes, past the first 64 KiB", async () => {
  const path = await Deno.makeTempFile({ prefix: "denovisor-support-test-" });
  try {
    await writeRandomImage(path, 200_000);
    const bytes = await Deno.readFile(path);
    assert.equal(bytes.length, 200_000);
    assert.ok(bytes.subarray(131_072, 131_172).some((b) => b !== 0));
    assert.ok(bytes.subarray(199_900).some((b) => b !== 0));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("timedOutput() returns the status, standard output and a wall time", async () => {
  const result = await timedOutput("bash", ["-c", "echo hi; sleep 0.1; exit 3"]);
  assert.equal(result.code, 3);
  assert.equal(result.stdout, "hi\n");
  assert.ok(result.seconds >= 0.1 && result.seconds < 30, `${result.seconds}`);
});
