import assert from "node:assert/strict";
import { EventHub } from "./events.ts";

Deno.test("EventHub sends each event as one NDJSON line to every stream", async () => {
  const hub = new EventHub();
  const readers = [hub.stream().getReader(), hub.stream().getReader()];
  hub.emit("web", "started", "VMM pid 42");
  hub.emit("web", "crashed");
  hub.closeAll();
  for (const reader of readers) {
    let text = "";
    const decoder = new TextDecoder();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    const lines = text.trimEnd().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((e) => [e.domain, e.kind, e.detail]), [
      ["web", "started", "VMM pid 42"],
      ["web", "crashed", undefined],
    ]);
    assert.match(lines[0].time, /^\d{4}-\d\d-\d\dT/);
  }
  assert.equal(hub.clients, 0);
});

Deno.test("EventHub forgets a stream its reader cancelled", async () => {
  const hub = new EventHub();
  const reader = hub.stream().getReader();
  assert.equal(hub.clients, 1);
  await reader.cancel();
  assert.equal(hub.clients, 0);
  hub.emit("web", "stopped");
});
