import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import { StateError } from "../../common/persist.ts";
import { VIRTIO_MMIO } from "./mmio_transport.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { VirtioRng } from "./rng.ts";
import { BUFFER_BASE, mmioRig } from "./testing/mmio_rig.ts";
import { assertRoundTrip, fuzzRestore, viaJson } from "../testing/persist_fuzz.ts";
import { VIRTIO_STATUS } from "./virtio_device.ts";

/** A virtio-rng whose limiter allows one 64-byte request per second, on a fake clock. */
function limitedRng(time: { now: number }) {
  const retries: Array<() => void> = [];
  const rng = new VirtioRng({
    fill: (bytes) => bytes.fill(0xab),
    rateLimiter: new RateLimiter(
      { bandwidth: { size: 64, refillTimeMs: 1000 } },
      () => time.now,
    ),
    scheduleRetry: (callback) => {
      retries.push(callback);
      return () => retries.splice(retries.indexOf(callback), 1);
    },
  });
  return { rng, retries };
}

/** A running rng with one request served and one held back by the limiter. */
function busySource(memory: GuestMemory) {
  const time = { now: 0 };
  const { rng } = limitedRng(time);
  const rig = mmioRig(rng, { memory });
  const [driver] = rig.drivers;
  driver.submit([{ address: BUFFER_BASE, length: 64, writable: true }]);
  driver.submit([{ address: BUFFER_BASE + 0x1000, length: 64, writable: true }]);
  rig.writeRegister(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
  assert.deepEqual(driver.takeUsed().map((u) => u.written), [64], "the second is throttled");
  rig.writeRegister(VIRTIO_MMIO.QUEUE_SEL, 0); // a select that must survive
  return { rig, driver, time };
}

Deno.test("virtio-mmio + rng: the held request is handed back and served after restore", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const source = busySource(memory);
  const time = { now: 5_000_000 }; // another host clock
  const target = limitedRng(time);
  const rig = mmioRig(target.rng, { memory, start: false });
  const state = assertRoundTrip(source.rig.transport, rig.transport);
  const queue = state.transport.queues[0].queue!;
  assert.equal(queue.nextAvail, 1, "the throttled chain is handed back");
  assert.deepEqual(queue.inFlight, []);
  assert.equal(state.transport.status & VIRTIO_STATUS.DRIVER_OK, VIRTIO_STATUS.DRIVER_OK);
  assert.equal(target.rng.bytesServed, 64);
  assert.equal(rig.readRegister(VIRTIO_MMIO.STATUS), source.rig.readRegister(VIRTIO_MMIO.STATUS));
  assert.deepEqual(source.driver.takeUsed(), [], "restoring served nothing");
  rig.transport.kick(); // resume: still throttled (no time passed), so a retry is scheduled
  assert.equal(target.retries.length, 1);
  time.now += 1000;
  target.retries[0]();
  assert.deepEqual(source.driver.takeUsed().map((u) => u.written), [64]);
  assert.equal(target.rng.bytesServed, 128);
  assert.ok(rig.edges() > 0, "the used buffer raised the interrupt");
});

Deno.test("virtio-mmio state of a device not yet started round-trips", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const source = mmioRig(new VirtioRng(), { memory, start: false });
  source.writeRegister(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE);
  source.writeRegister(VIRTIO_MMIO.QUEUE_SEL, 0);
  source.writeRegister(VIRTIO_MMIO.QUEUE_NUM, 8);
  source.writeRegister(VIRTIO_MMIO.QUEUE_DESC_HIGH, 0xdead); // garbage before enabling is kept
  const target = mmioRig(new VirtioRng(), { memory, start: false });
  const state = assertRoundTrip(source.transport, target.transport);
  assert.equal(state.transport.queues[0].queue, null);
  assert.equal(target.readRegister(VIRTIO_MMIO.QUEUE_DESC_HIGH), 0xdead);
});

Deno.test("virtio-mmio restore refuses rings outside guest RAM", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const good = viaJson(busySource(memory).rig.transport.save());
  const target = mmioRig(limitedRng({ now: 0 }).rng, { memory, start: false });
  const before = JSON.stringify(target.transport.save());
  const bad = viaJson(good);
  (bad.transport.queues[0] as { usedRing: string }).usedRing = "0x1fffc0"; // 64 bytes below the end
  assert.throws(
    () => target.transport.restore(bad),
    (error: unknown) =>
      error instanceof StateError && error.path === "state.transport.queues[0]" &&
      /not inside one guest RAM region/.test(error.message),
  );
  assert.equal(JSON.stringify(target.transport.save()), before);
});

Deno.test("virtio-mmio restore refuses malformed state and changes nothing", () => {
  const memory = GuestMemory.ofSize(1 << 21);
  const good = viaJson(busySource(memory).rig.transport.save());
  const target = mmioRig(limitedRng({ now: 0 }).rng, { memory, start: false });
  const report = fuzzRestore(target.transport, good, {
    iterations: 400,
    lenient: ["state.transport.queues[0].queue", "state.transport.device.rateLimiter"],
    mustRefuse: [
      { ...good, interruptStatus: 4 },
      { ...good, transport: { ...good.transport, status: 0x4f | 0x20 } },
      { ...good, transport: { ...good.transport, configMsixVector: 0 } }, // MMIO has no MSI-X
      { ...good, transport: { ...good.transport, driverFeatures: "0x1" } }, // no VERSION_1
      { ...good, transport: { ...good.transport, queues: [] } },
      { ...good, transport: { ...good.transport, device: null } },
    ],
  });
  assert.ok(report.refused > 100, `only ${report.refused} of ${report.tried} refused`);
});
