/**
 * `denovisor console NAME --force` against the VMM's real console hub (vmm/console_hub.ts)
 * behind a stand-in API, no KVM: it takes the keyboard from the viewer who has it, that
 * viewer is told, and what the forcing viewer types reaches the guest's input.
 */

import assert from "node:assert/strict";
import { TAKEN_NOTICE } from "../vmm/console_hub.ts";
import { ConsoleReader } from "../vmm/testing/console_reader.ts";
import { reap, StandInConsole, until } from "./console_support.ts";

const encoder = new TextEncoder();

Deno.test("console --force takes the keyboard from another viewer, who is told", async () => {
  const stand = await StandInConsole.start("denovisor-console-force-");
  const { consoleSocket, hub } = stand;
  // The viewer who types first.
  const first = await Deno.connect({ transport: "unix", path: consoleSocket });
  const firstOut = new ConsoleReader(first);
  await first.write(encoder.encode("rw\n"));
  const child = stand.spawnConsole("--force");
  const writer = child.stdin.getWriter();
  try {
    await until(() => firstOut.text().startsWith("ok rw\n"), "the first viewer's rw");
    await until(() => firstOut.text().includes(TAKEN_NOTICE), "the notice to the first viewer");
    await writer.write(encoder.encode("forced keys"));
    await until(() => stand.typed === "forced keys", "the forcing viewer's keys at the guest");
    await first.write(encoder.encode("ignored"));
    hub.write(encoder.encode("guest output\n"));
    await until(
      () => firstOut.text().endsWith("guest output\n"),
      "guest output at the first viewer",
    );
    assert.equal(stand.typed, "forced keys", "the first viewer's keys no longer reach the guest");
    await writer.write(new Uint8Array([0x1d])); // Ctrl-] detaches
    await writer.close().catch(() => {});
    const { code, stdout, stderr } = await child.output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.match(
      out,
      /^Connected to domain 'w' \(--force: the keyboard is yours\); escape character is \^\]/,
    );
  } finally {
    await reap(child);
    first.close();
    await firstOut.done;
    await stand.close();
  }
});
