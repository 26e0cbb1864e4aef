import assert from "node:assert/strict";
import { closeFd, openFile } from "../ffi/libc.ts";
import { O_CLOEXEC, O_RDONLY } from "../ffi/libc_symbols.ts";
import { sendFds, socketPair } from "../ffi/scm_rights.ts";
import { awaitPoolOrder, encodePoolOrder, parsePoolOrder, PoolOrderError } from "./pool_order.ts";

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

Deno.test("awaitPoolOrder() maps the table's indexes onto the descriptors received", () => {
  const [daemon, vmm] = socketPair();
  const kvm = openFile("/dev/null", O_RDONLY | O_CLOEXEC);
  const image = openFile("/dev/zero", O_RDONLY | O_CLOEXEC);
  let order;
  try {
    sendFds(
      daemon,
      encodePoolOrder({
        config: "/run/d/config.json",
        seccomp: "strict",
        descriptors: { kvm: 3, files: { "/images/a.raw": 4 }, taps: {} },
      }),
      [kvm, image],
    );
    order = awaitPoolOrder(vmm);
  } finally {
    [daemon, kvm, image].forEach(closeFd);
  }
  assert.ok(order);
  assert.equal(order.config, "/run/d/config.json");
  assert.equal(order.seccomp, "strict");
  const fds = [order.descriptors.kvm!, order.descriptors.files["/images/a.raw"]];
  // New descriptors of the same files, not the sender's numbers.
  assert.equal(Deno.readLinkSync(`/proc/self/fd/${fds[0]}`), "/dev/null");
  assert.equal(Deno.readLinkSync(`/proc/self/fd/${fds[1]}`), "/dev/zero");
  fds.forEach(closeFd);
});

Deno.test("awaitPoolOrder() returns nothing when the daemon's end closes (the daemon died)", () => {
  const [daemon, vmm] = socketPair();
  closeFd(daemon);
  assert.equal(awaitPoolOrder(vmm), undefined);
});

Deno.test("parsePoolOrder() refuses a relative config, an index not sent and a bad mode", () => {
  const good = { config: "/c.json", seccomp: "strict", descriptors: { files: {}, taps: {} } };
  assert.throws(() => parsePoolOrder(encode({ ...good, config: "c.json" }), []), PoolOrderError);
  assert.throws(
    () => parsePoolOrder(encode({ ...good, descriptors: { kvm: 4, files: {}, taps: {} } }), [9]),
    PoolOrderError,
  );
  assert.throws(() => parsePoolOrder(encode({ ...good, seccomp: "none" }), []));
  assert.throws(() => parsePoolOrder(new Uint8Array([0xff, 0x00]), []), PoolOrderError);
  assert.equal(parsePoolOrder(encode(good), []).config, "/c.json");
});
