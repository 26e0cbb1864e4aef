import assert from "node:assert/strict";
import { parseDiskSpec, parseNicSpec } from "./device_specs.ts";
import { UsageError } from "./usage_error.ts";

Deno.test("parseDiskSpec() reads path, flags, transport, serial and rate limits", () => {
  assert.deepEqual(parseDiskSpec("/var/lib/a.img"), {
    path: "/var/lib/a.img",
    format: undefined,
    readOnly: false,
    transport: "pci",
    serial: undefined,
    rateLimit: undefined,
    bus: "virtio",
  });
  assert.deepEqual(parseDiskSpec("b.img,readonly,transport=mmio,serial=DISK1,bw=50M,ops=1k"), {
    path: "b.img",
    format: undefined,
    readOnly: true,
    transport: "mmio",
    serial: "DISK1",
    rateLimit: {
      bandwidth: { size: 50 * 1024 ** 2, refillTimeMs: 1000 },
      ops: { size: 1024, refillTimeMs: 1000 },
    },
    bus: "virtio",
  });
});

Deno.test("parseDiskSpec() refuses unknown, repeated and malformed options", () => {
  const bad = [
    "",
    "a.img,readonly=yes",
    "a.img,transport=isa",
    "a.img,serial=" + "x".repeat(21),
    "a.img,bw=fast",
    "a.img,ops=0",
    "a.img,cache=none",
    "a.img,serial=a,serial=b",
    "a.img,serial",
  ];
  for (const text of bad) {
    assert.throws(
      () => parseDiskSpec(text),
      (e: Error) => e instanceof UsageError && e.message.startsWith("--disk:"),
      text,
    );
  }
});

Deno.test("parseNicSpec() reads tap, mac, bridge and transport", () => {
  assert.deepEqual(parseNicSpec("tap=auto,mac=52:54:00:AA:bb:01,bridge=br0,transport=mmio"), {
    tap: "auto",
    mac: "52:54:00:aa:bb:01",
    bridge: "br0",
    transport: "mmio",
    rateLimit: undefined,
  });
  assert.equal(parseNicSpec("tap=dv0").tap, "dv0");
});

Deno.test("parseNicSpec() refuses bad names and multicast MACs", () => {
  for (
    const text of [
      "dv0",
      "tap=",
      "tap=this-name-is-too-long",
      "tap=dv0,mac=01:00:5e:00:00:01",
      "tap=dv0,mac=52:54:00",
      "tap=dv0,vlan=3",
    ]
  ) {
    assert.throws(() => parseNicSpec(text), UsageError, text);
  }
});

Deno.test("parseDiskSpec() takes format=raw|qcow2 and refuses other formats", () => {
  assert.equal(parseDiskSpec("/d.img,format=qcow2").format, "qcow2");
  assert.equal(parseDiskSpec("/d.img").format, undefined);
  assert.throws(() => parseDiskSpec("/d.img,format=vmdk"), /format=vmdk is not one of raw, qcow2/);
});

Deno.test("parseDiskSpec() takes bus=sata and refuses other buses and SATA rate limits", () => {
  assert.equal(parseDiskSpec("/a.img").bus, "virtio");
  assert.equal(parseDiskSpec("/a.img,bus=sata,readonly").bus, "sata");
  assert.throws(() => parseDiskSpec("/a.img,bus=ide"), /bus=ide is not one of virtio, sata/);
  assert.throws(
    () => parseDiskSpec("/a.img,bus=sata,bw=1M"),
    /bus=sata takes no serial or rate limit/,
  );
});
