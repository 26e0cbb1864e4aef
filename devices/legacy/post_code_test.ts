import assert from "node:assert/strict";
import { PostCode } from "./post_code.ts";

Deno.test("the POST code port remembers the last code and reads all ones", () => {
  const port = new PostCode();
  assert.equal(port.lastCode, undefined);
  port.write(0, Uint8Array.of(0x12));
  port.write(0, Uint8Array.of(0x34));
  assert.equal(port.lastCode, 0x34);
  assert.equal(port.writes, 2);
  const data = new Uint8Array(1);
  port.read(0, data);
  assert.equal(data[0], 0xff);
});
