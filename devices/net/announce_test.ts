import assert from "node:assert/strict";
import { ETHERTYPE_RARP, rarpAnnouncement } from "./announce.ts";

Deno.test("rarpAnnouncement() is a 60-byte broadcast RARP request from the MAC", () => {
  const mac = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
  const frame = rarpAnnouncement(mac);
  const view = new DataView(frame.buffer);
  assert.equal(frame.length, 60);
  assert.deepEqual([...frame.subarray(0, 6)], [255, 255, 255, 255, 255, 255]);
  assert.deepEqual(frame.subarray(6, 12), mac);
  assert.equal(view.getUint16(12), ETHERTYPE_RARP);
  assert.equal(view.getUint16(20), 3, "opcode: request reverse");
  assert.deepEqual(frame.subarray(22, 28), mac, "sender hardware address");
  assert.deepEqual(frame.subarray(32, 38), mac, "target hardware address");
  assert.ok(frame.subarray(38).every((b) => b === 0), "padding and IPs are zero");
  assert.throws(() => rarpAnnouncement(new Uint8Array(5)), RangeError);
});
