import assert from "node:assert/strict";
import {
  INTERFACE_NAME_RULE,
  isDiskSerial,
  isInterfaceName,
  isObjectName,
  isUuid,
  isVolumeName,
  macProblem,
  parseMac,
  ValidationError,
} from "./validators.ts";

Deno.test("macProblem() accepts unicast MACs and refuses malformed, multicast and zero ones", () => {
  assert.equal(macProblem("52:54:00:12:34:56"), undefined);
  assert.equal(macProblem("02:AB:cd:00:00:01"), undefined);
  assert.equal(
    macProblem("52:54:00:12:34"),
    '"52:54:00:12:34" is not a MAC address; write six hex pairs like 52:54:00:12:34:56',
  );
  for (const bad of ["", "52-54-00-12-34-56", "52:54:00:12:34:5g", "52:54:00:12:34:56:"]) {
    assert.match(macProblem(bad) ?? "", /is not a MAC address/);
  }
  assert.match(macProblem("01:00:5e:00:00:01") ?? "", /is a multicast address; use a unicast one/);
  assert.match(macProblem("ff:ff:ff:ff:ff:ff") ?? "", /multicast/);
  assert.match(macProblem("00:00:00:00:00:00") ?? "", /is the zero address/);
});

Deno.test("parseMac() returns the six bytes or throws a coded ValidationError", () => {
  assert.deepEqual([...parseMac("52:54:00:ab:CD:ef")], [0x52, 0x54, 0, 0xab, 0xcd, 0xef]);
  assert.throws(
    () => parseMac("00:00:00:00:00:00"),
    (e: unknown) => e instanceof ValidationError && e.code === "invalid",
  );
});

Deno.test("isInterfaceName() takes 1-15 safe characters, never . or ..", () => {
  for (const good of ["tap0", "br-lan", "vnet_1.2", "a", "x".repeat(15)]) {
    assert.equal(isInterfaceName(good), true, good);
  }
  for (const bad of ["", ".", "..", "x".repeat(16), "br 0", "tap/0", "eth0:1", "täp"]) {
    assert.equal(isInterfaceName(bad), false, bad);
  }
  assert.match(INTERFACE_NAME_RULE, /^1-15 /);
});

Deno.test("isDiskSerial() takes at most 20 printable ASCII characters", () => {
  assert.equal(isDiskSerial(""), true);
  assert.equal(isDiskSerial("x".repeat(20)), true);
  assert.equal(isDiskSerial("WD-1234 ~!"), true);
  assert.equal(isDiskSerial("x".repeat(21)), false);
  assert.equal(isDiskSerial("tab\there"), false);
  assert.equal(isDiskSerial("é"), false);
});

Deno.test("isUuid() takes 8-4-4-4-12 hex digits in either case", () => {
  assert.equal(isUuid(crypto.randomUUID()), true);
  assert.equal(isUuid("6F9619FF-8B86-D011-B42D-00C04FC964FF"), true);
  assert.equal(isUuid("6f9619ff8b86d011b42d00c04fc964ff"), false);
  assert.equal(isUuid("6f9619ff-8b86-d011-b42d-00c04fc964fg"), false);
});

Deno.test("object and volume names cannot escape a directory", () => {
  for (const good of ["web", "web-1.test_2", "9", "x".repeat(64)]) {
    assert.equal(isObjectName(good), true, good);
    assert.equal(isVolumeName(good), true, good);
  }
  for (const bad of ["", ".hidden", "-x", "a/b", "..", "x".repeat(65), "a b"]) {
    assert.equal(isObjectName(bad), false, bad);
    assert.equal(isVolumeName(bad), false, bad);
  }
  assert.equal(isVolumeName("disk+1"), true);
  assert.equal(isObjectName("disk+1"), false);
});
