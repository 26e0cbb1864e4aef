/**
 * The teardown check of the daemon tests: an uncaught error in the daemon's output or in a
 * domain's log (its VMM's stderr) fails the test that started the daemon.
 */
import assert from "node:assert/strict";
import { TestDaemon } from "./daemon_support.ts";
import { uncaughtErrors } from "./log_scan.ts";

const CRASH = "error: Uncaught (in promise) TypeError: Cannot read properties of undefined\n" +
  "    at VmmDomain.stats (file:///vmm/vmm_domain.ts:255:3)\n";

Deno.test("uncaughtErrors() quotes each uncaught error with its source, colours removed", () => {
  assert.equal(uncaughtErrors([{ source: "a", text: "booted\nerror: bad flag\n" }]), undefined);
  const found = uncaughtErrors([
    { source: "daemon", text: "listening\n" },
    { source: "web.log", text: `tick 1\n\x1b[0m\x1b[1m\x1b[31m${CRASH}` },
  ]);
  assert.ok(found);
  assert.match(found, /web\.log:\nerror: Uncaught \(in promise\) TypeError: Cannot read/);
  assert.match(found, /at VmmDomain\.stats/);
  assert.ok(!found.includes("daemon:"), found);
  assert.ok(!found.includes("\x1b"), found);
});

Deno.test("a daemon test fails at clean-up when a domain's log holds an uncaught error", async () => {
  const clean = await TestDaemon.start();
  await clean.cleanup(); // nothing logged: no failure

  const daemon = await TestDaemon.start();
  await Deno.writeTextFile(`${daemon.dir}/logs/web.log`, `tick 1\n${CRASH}`);
  await assert.rejects(
    daemon.cleanup(),
    (e: unknown) =>
      e instanceof Error && e.message.includes(`${daemon.dir}/logs/web.log:\nerror: Uncaught`),
  );
  await assert.rejects(Deno.stat(daemon.dir), Deno.errors.NotFound); // still cleaned up

  const allowed = await TestDaemon.start();
  allowed.allowUncaughtErrors = true;
  await Deno.writeTextFile(`${allowed.dir}/logs/web.log`, CRASH);
  await allowed.cleanup();
});
