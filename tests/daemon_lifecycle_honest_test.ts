/**
 * What shutdown, reboot and reset report, on a real daemon without KVM (the VMM is the
 * stand-in tests/fixtures/lifecycle_vmm.ts): a guest that ignores shutdown is forced off
 * and every view says so (the CLI's message and exit status 1, `lastEnd`, the event),
 * unless --force-after asked for it; reboot asks the guest (Ctrl-Alt-Del) while reset
 * pulls the reset line.
 */

import assert from "node:assert/strict";
import { FORCED_SHUTDOWN_END } from "../manager/api_types.ts";
import type { DomainInfo } from "../manager/api_types.ts";
import { denovisor } from "./cli_support.ts";
import { EventRecorder, TestDaemon } from "./daemon_support.ts";

const LIFECYCLE_VMM = new URL("./fixtures/lifecycle_vmm.ts", import.meta.url).pathname;

async function start(): Promise<TestDaemon> {
  return await TestDaemon.start({
    DENOVISOR_VMM_COMMAND: JSON.stringify([Deno.execPath(), "run", "-A", LIFECYCLE_VMM]),
  });
}

const FORCED = new RegExp(
  `^${FORCED_SHUTDOWN_END}: the guest did not power off within 1 s \\(.+\\)$`,
);

Deno.test("shutdown of a guest that ignores it: forced off, said so, exit 1 (0 with --force-after)", async () => {
  const daemon = await start();
  try {
    const events = await EventRecorder.open(daemon.client);
    await daemon.run({ name: "stubborn1", boot: { demo: true } });
    const result = await denovisor([
      "shutdown",
      "stubborn1",
      "--timeout",
      "1",
      "--socket",
      daemon.socket,
    ]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr.trim(),
      /^shutdown: Domain 'stubborn1' was forced off after the shutdown timeout: the guest did not power off within 1 s \(.+\); give --force-after S when forcing it off is what you want$/,
    );
    const info = await daemon.client.get<DomainInfo>("/v1/domains/stubborn1");
    assert.equal(info.state, "shutoff");
    assert.match(info.lastEnd ?? "", FORCED);
    const event = await events.waitFor((e) =>
      e.domain === "stubborn1" && !["defined", "started"].includes(e.kind)
    );
    assert.equal(event.kind, "destroyed");
    assert.match(event.detail ?? "", FORCED);

    await daemon.client.post("/v1/domains/stubborn1/start");
    const asked = await denovisor([
      "shutdown",
      "stubborn1",
      "--force-after",
      "1",
      "--socket",
      daemon.socket,
    ]);
    assert.equal(asked.code, 0, asked.stderr);
    assert.match(
      asked.stdout.trim(),
      /^Domain 'stubborn1' was forced off after the shutdown timeout: /,
    );

    // A transient domain is gone once off: the answer still carries its end.
    await daemon.client.post("/v1/domains?transient=1", {
      name: "stubborn2",
      boot: { demo: true },
    });
    const transient = await daemon.client.post<DomainInfo>("/v1/domains/stubborn2/shutdown", {
      timeoutSeconds: 1,
    });
    assert.equal(transient.note, "the transient domain is gone");
    assert.match(transient.lastEnd ?? "", FORCED);

    const both = await denovisor(["shutdown", "x", "--timeout", "1", "--force-after", "1"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give --timeout or --force-after, not both/);
    await events.close();
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("shutdown of a guest that powers off: 'is shut off', exit 0, a clean end", async () => {
  const daemon = await start();
  try {
    await daemon.run({ name: "polite", boot: { demo: true } });
    const result = await denovisor(["shutdown", "polite", "--socket", daemon.socket]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "Domain 'polite' is shut off");
    const info = await daemon.client.get<DomainInfo>("/v1/domains/polite");
    assert.doesNotMatch(info.lastEnd ?? "", /forced/);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("reboot asks the guest (Ctrl-Alt-Del); reset pulls the reset line", async () => {
  const daemon = await start();
  try {
    const events = await EventRecorder.open(daemon.client);
    await daemon.run({ name: "box", boot: { demo: true } });
    const reboot = await denovisor(["reboot", "box", "--socket", daemon.socket]);
    assert.equal(reboot.code, 0, reboot.stderr);
    assert.equal(reboot.stdout.trim(), "Domain 'box' is being rebooted");
    const log = await daemon.waitForLog("box", "lifecycle-vmm: ctrl-alt-del");
    assert.doesNotMatch(log, /lifecycle-vmm: reset/);

    const reset = await denovisor(["reset", "box", "--socket", daemon.socket]);
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal(reset.stdout.trim(), "Domain 'box' was reset");
    await daemon.waitForLog("box", "lifecycle-vmm: reset");
    const event = await events.waitFor((e) => e.domain === "box" && e.kind === "rebooted");
    assert.equal(event.detail, "reset by request");

    await daemon.client.post("/v1/domains/box/pause");
    const paused = await denovisor(["reboot", "box", "--socket", daemon.socket]);
    assert.equal(paused.code, 5);
    assert.match(paused.stderr, /is paused, so its guest cannot see a reboot request/);
    await events.close();
  } finally {
    await daemon.cleanup();
  }
});
