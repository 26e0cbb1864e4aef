import assert from "node:assert/strict";
import { VcpuChannel } from "./vcpu_channel.ts";

Deno.test("VcpuChannel carries addresses above 4 GiB between threads", () => {
  const channel = new VcpuChannel();
  for (const address of [0, 0x3f8, 0xfee00000, 0xffffffff, 0x1_0000_0000, 0xfd_0000_1234]) {
    channel.address = address;
    assert.equal(new VcpuChannel(channel.buffer).address, address);
  }
});
