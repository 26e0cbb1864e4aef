import assert from "node:assert/strict";
import { allowRestart, decideEnd, MAX_RESTARTS } from "./end_policy.ts";
import type { DomainDefinition } from "../api_types.ts";

const definition: DomainDefinition = {
  name: "web",
  boot: { demo: true },
  onPoweroff: "destroy",
  onReboot: "restart",
  onCrash: "restart",
};
const at = (kind: "poweroff" | "reboot" | "crash" | "destroyed", detail = "") => ({
  kind,
  detail,
  time: "2026-01-01T00:00:00Z",
});

Deno.test("decideEnd() treats a VMM that died without end.json as a crash", () => {
  assert.deepEqual(decideEnd(definition, undefined, "VMM killed by SIGKILL", undefined), {
    event: "crashed",
    action: "restart",
    detail: "VMM killed by SIGKILL without an end record; on_crash=restart",
  });
});

Deno.test("decideEnd() applies on_poweroff, on_reboot and on_crash from end.json", () => {
  assert.deepEqual(decideEnd(definition, at("poweroff", "guest powered off"), "", undefined), {
    event: "shutdown",
    action: "destroy",
    detail: "guest powered off; on_poweroff=destroy",
  });
  assert.equal(decideEnd(definition, at("reboot"), "", undefined).action, "restart");
  const preserve = { ...definition, onCrash: "preserve" as const };
  assert.equal(decideEnd(preserve, at("crash", "triple fault"), "", undefined).action, "preserve");
});

Deno.test("decideEnd() stops a domain whose shutdown or destroy was asked for", () => {
  const restartAlways = { ...definition, onPoweroff: "restart" as const };
  assert.equal(decideEnd(restartAlways, at("poweroff"), "", "shutdown").action, "stop");
  assert.equal(decideEnd(restartAlways, at("destroyed"), "", undefined).event, "destroyed");
  // A crash during a shutdown is still a crash.
  assert.equal(decideEnd(definition, undefined, "VMM exited", "shutdown").event, "crashed");
});

Deno.test("allowRestart() stops a crash loop and forgets old restarts", () => {
  const recent: number[] = [];
  for (let i = 0; i < MAX_RESTARTS; i++) assert.equal(allowRestart(recent, 1000 + i), true);
  assert.equal(allowRestart(recent, 2000), false);
  assert.equal(allowRestart(recent, 1000 + 61_000), true);
});
