import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { VirtioBalloon } from "./balloon.ts";
import { CONSOLE_RECEIVE_QUEUE, VirtioConsole, type VirtioConsoleState } from "./console.ts";
import { VIRTIO_MMIO } from "./mmio_transport.ts";
import { VirtioNet } from "./net.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { BUFFER_BASE, mmioRig } from "./testing/mmio_rig.ts";
import { assertRoundTrip, fuzzRestore, viaJson } from "../testing/persist_fuzz.ts";

/** A device's own save/prepareRestore as a `FuzzTarget`. */
function deviceTarget(
  device: { save(): unknown; prepareRestore(s: unknown, p: string): () => void },
) {
  return {
    save: () => device.save(),
    restore: (state: unknown) => device.prepareRestore(state, "state")(),
  };
}

Deno.test("virtio-console: pending input survives a restore and reaches the guest", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const output: number[] = [];
  const console1 = new VirtioConsole({ output: { write: (b) => output.push(...b) } });
  const source = mmioRig(console1, { memory });
  const rx = source.drivers[CONSOLE_RECEIVE_QUEUE];
  rx.submit([{ address: BUFFER_BASE, length: 4, writable: true }]);
  source.writeRegister(VIRTIO_MMIO.QUEUE_NOTIFY, CONSOLE_RECEIVE_QUEUE);
  console1.receive(new TextEncoder().encode("hello, world"));
  assert.deepEqual(rx.takeUsed().map((u) => u.written), [4]);
  const console2 = new VirtioConsole({ output: { write: () => {} } });
  const target = mmioRig(console2, { memory, start: false });
  const state = assertRoundTrip(source.transport, target.transport);
  assert.equal(atob((state.transport.device as VirtioConsoleState).input), "o, world");
  assert.equal(console2.pendingInput, 8);
  rx.submit([{ address: BUFFER_BASE + 0x100, length: 64, writable: true }]);
  target.transport.kick();
  assert.deepEqual(rx.takeUsed().map((u) => u.written), [8]);
  assert.equal(new TextDecoder().decode(memory.slice(BUFFER_BASE + 0x100, 8)), "o, world");
  assert.equal(console2.stats.bytesReceived, 12);
});

Deno.test("virtio-console restore refuses malformed state and changes nothing", () => {
  const device = new VirtioConsole({ output: { write: () => {} }, inputBufferBytes: 16 });
  device.receive(new TextEncoder().encode("pending"));
  const good = viaJson(device.save());
  fuzzRestore(
    deviceTarget(new VirtioConsole({ output: { write: () => {} }, inputBufferBytes: 16 })),
    good,
    {
      mustRefuse: [{ ...good, input: btoa("x".repeat(17)) }],
    },
  );
});

function net(mac?: string, limited = false) {
  return new VirtioNet({
    tap: { name: "t", fd: -1, supportedOffloads: 0, setOffloads() {} },
    mac,
    rxRateLimiter: limited
      ? new RateLimiter({ ops: { size: 10, refillTimeMs: 100 } }, () => 0)
      : undefined,
  });
}

Deno.test("virtio-net: the MAC (even a random one), link and counters survive a restore", () => {
  const source = net(undefined, true);
  source.setLinkUp(false);
  const target = net(undefined, true);
  assert.notEqual(target.mac, source.mac, "two random MACs");
  const state = assertRoundTrip(source, deviceTarget(target));
  assert.equal(state.linkUp, false);
  assert.equal(target.mac, source.mac);
  const config = new Uint8Array(8);
  target.readConfig(0, config);
  assert.deepEqual([...config.subarray(6)], [0, 0], "link down");
  source.close();
  target.close();
});

Deno.test("virtio-net restore refuses malformed state and changes nothing", () => {
  const source = net("52:54:00:12:34:56", true);
  const good = viaJson(source.save());
  const target = net("52:54:00:00:00:01", true);
  fuzzRestore(deviceTarget(target), good, {
    mustRefuse: [
      { ...good, mac: "53:54:00:12:34:56" }, // multicast
      { ...good, mac: "52:54:00:12:34" },
      { ...good, rxRateLimiter: null },
      { ...good, txRateLimiter: good.rxRateLimiter },
    ],
  });
  assert.throws(
    () => deviceTarget(net()).restore(good),
    /state\.rxRateLimiter: this device has no rate limiter/,
  );
  source.close();
  target.close();
});

Deno.test("virtio-balloon: target, actual, inflated pages and stats survive a restore", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const balloon = new VirtioBalloon({ memorySize: 1 << 21 });
  const source = mmioRig(balloon, { memory });
  balloon.setTarget(100);
  source.transport.write(0x100 + 4, Uint8Array.of(50, 0, 0, 0)); // the guest reports 50 pages
  const stats = source.drivers[2];
  const entry = new Uint8Array(10);
  new DataView(entry.buffer).setBigUint64(2, 123456789n, true);
  entry[0] = 4; // MEMFREE
  memory.slice(BUFFER_BASE, 10).set(entry);
  stats.submit([{ address: BUFFER_BASE, length: 10 }]);
  source.writeRegister(VIRTIO_MMIO.QUEUE_NOTIFY, 2);
  const balloon2 = new VirtioBalloon({ memorySize: 1 << 21 });
  const target = mmioRig(balloon2, { memory, start: false });
  const state = assertRoundTrip(source.transport, target.transport);
  assert.equal(
    state.transport.queues[2].queue?.nextAvail,
    0,
    "the held stats buffer is handed back",
  );
  assert.equal(balloon2.targetPages, 100);
  assert.equal(balloon2.actualPages, 50);
  assert.equal(balloon2.stats?.values.get(4), 123456789n);
  target.transport.kick(); // takes the stats buffer again
  assert.ok(balloon2.requestStats(), "the restored device holds the stats buffer");
  assert.deepEqual(stats.takeUsed().map((u) => u.written), [0]);
});

Deno.test("virtio-balloon restore refuses malformed state and changes nothing", () => {
  const balloon = new VirtioBalloon({ memorySize: 1 << 21 });
  balloon.setTarget(10);
  const good = {
    ...viaJson(balloon.save()),
    stats: { receivedAt: 1, values: [[4, "0x10"], [5, "0x20"]] },
  };
  fuzzRestore(deviceTarget(new VirtioBalloon({ memorySize: 1 << 21 })), good, {
    lenient: ["state.stats"],
    mustRefuse: [
      { ...good, targetPages: 513 }, // more than guest RAM
      { ...good, stats: { receivedAt: 1, values: [[4, "0x1"], [4, "0x2"]] } },
      { ...good, stats: { receivedAt: 1, values: [[4]] } },
    ],
  });
});
