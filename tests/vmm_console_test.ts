/**
 * The console socket of `denovisor vmm`: one read-write client, read-only viewers,
 * replay of recent output on attach.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { withVmm } from "./vmm_support.ts";
import { attachConsole } from "../vmm/vmm_client.ts";
import { ByteRing } from "../vmm/console_hub.ts";
import { runFiles } from "../vmm/run_files.ts";
import { ConsoleReader } from "../vmm/testing/console_reader.ts";

const encoder = new TextEncoder();

kvmTest(
  "console: replay on attach, rw echo round trip, a second client is read-only and its input is dropped",
  async () => {
    await withVmm({}, async (vmm) => {
      await vmm.waitLog(/tick 1/);
      const rw = await attachConsole(vmm.dir, "rw");
      assert.equal(rw.mode, "rw");
      const rwOut = new ConsoleReader(rw.conn, rw.initial);
      // What was printed before the attach is replayed.
      await rwOut.waitFor(/domain guest up[\s\S]*tick 1/);

      const second = await attachConsole(vmm.dir, "rw");
      assert.equal(second.mode, "ro", "rw is taken, so the second client gets ro");
      const roOut = new ConsoleReader(second.conn, second.initial);
      await roOut.waitFor(/domain guest up/);

      await second.conn.write(encoder.encode("from-ro\n"));
      await rw.conn.write(encoder.encode("from-rw\n"));
      await rwOut.waitFor(/echo: from-rw/);
      await roOut.waitFor(/echo: from-rw/); // viewers get live output
      assert.doesNotMatch(vmm.log(), /echo: from-ro/);
      assert.doesNotMatch(rwOut.text(), /echo: from-ro/);

      // Disconnecting releases read-write.
      rw.conn.close();
      await rwOut.done;
      let again;
      for (let i = 0; i < 50; i++) {
        again = await attachConsole(vmm.dir, "rw");
        if (again.mode === "rw") break;
        again.conn.close();
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(again?.mode, "rw");
      again!.conn.close();
      second.conn.close();
      await roOut.done;
    });
  },
  120_000,
);

kvmTest("console: a client that does not say rw or ro is refused", async () => {
  await withVmm({}, async (vmm) => {
    const conn = await Deno.connect({ transport: "unix", path: runFiles(vmm.dir).consoleSocket });
    await conn.write(encoder.encode("hello\n"));
    const buffer = new Uint8Array(256);
    const n = await conn.read(buffer);
    assert.match(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), /^error: send "rw" or "ro"/);
    assert.equal(await conn.read(buffer), null);
    conn.close();
    assert.equal((await vmm.client.status()).state, "running");
  });
}, 120_000);

Deno.test("ByteRing keeps the last bytes in order across wrap-around", () => {
  const ring = new ByteRing(8);
  ring.push(encoder.encode("abc"));
  assert.equal(new TextDecoder().decode(ring.snapshot()), "abc");
  ring.push(encoder.encode("defgh"));
  assert.equal(new TextDecoder().decode(ring.snapshot()), "abcdefgh");
  ring.push(encoder.encode("ij"));
  assert.equal(new TextDecoder().decode(ring.snapshot()), "cdefghij");
  ring.push(encoder.encode("0123456789"));
  assert.equal(new TextDecoder().decode(ring.snapshot()), "23456789");
});
