import assert from "node:assert/strict";
import { DiskError } from "../disk.ts";
import { imageInfo } from "../image.ts";
import { runOffThread } from "./off_thread.ts";

Deno.test("runOffThread() converts on a Worker while the event loop keeps running", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const source = `${dir}/source.raw`;
    const data = new Uint8Array(64 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i >> 12) | 1;
    await Deno.writeFile(source, data);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const progress: number[] = [];
    try {
      await runOffThread(
        { op: "convert", source, target: `${dir}/copy.qcow2`, options: { format: "qcow2" } },
        (done) => progress.push(done),
      );
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks > 0, "the main thread's timers never ran during the copy");
    assert.equal(progress.at(-1), data.length);
    const info = imageInfo(`${dir}/copy.qcow2`);
    assert.equal(info.format, "qcow2");
    assert.equal(info.virtualSize, data.length);
    const compare = await new Deno.Command("qemu-img", {
      args: ["compare", "-f", "raw", "-F", "qcow2", source, `${dir}/copy.qcow2`],
    }).output();
    assert.equal(compare.code, 0, new TextDecoder().decode(compare.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runOffThread() rejects with the operation's own error class and message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      runOffThread({
        op: "convert",
        source: `${dir}/missing.raw`,
        target: `${dir}/out.qcow2`,
        options: { format: "qcow2" },
      }),
      (error: Error) => error instanceof DiskError && /missing\.raw/.test(error.message),
    );
    await Deno.writeFile(`${dir}/plain.raw`, new Uint8Array(4096));
    await assert.rejects(
      runOffThread({ op: "commit", overlay: `${dir}/plain.raw`, options: {} }),
      /no backing file/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
