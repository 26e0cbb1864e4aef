/**
 * `denovisor check`: its --json fields, its text and its exit status (0 when VMs can run,
 * 1 when they cannot), on this host and with the KVM device pointed elsewhere.
 */
import assert from "node:assert/strict";
import { denovisor } from "./cli_support.ts";
import { kvmUnavailable } from "./kvm_support.ts";
import { REQUIRED_CAPABILITIES } from "../core/kvm.ts";

interface Check {
  ok: boolean;
  warning?: boolean;
  what: string;
  detail: string;
}

function parseReport(stdout: string): { ok: boolean; checks: Check[] } {
  const report = JSON.parse(stdout);
  assert.deepEqual(Object.keys(report).sort(), ["checks", "ok"]);
  assert.equal(typeof report.ok, "boolean");
  assert.ok(Array.isArray(report.checks) && report.checks.length > 0);
  for (const check of report.checks) {
    assert.equal(typeof check.ok, "boolean", JSON.stringify(check));
    assert.equal(typeof check.what, "string", JSON.stringify(check));
    assert.equal(typeof check.detail, "string", JSON.stringify(check));
    assert.ok(check.warning === undefined || typeof check.warning === "boolean");
  }
  // ok is the conjunction of the checks; warnings do not make it false.
  assert.equal(report.ok, report.checks.every((c: Check) => c.ok));
  return report;
}

Deno.test("check --json without a KVM device: ok false, exit 1, the device named", async () => {
  const r = await denovisor(["check", "--json"], {
    env: { DENOVISOR_KVM_DEVICE: "/nonexistent/kvm" },
  });
  assert.equal(r.code, 1, r.stderr);
  const report = parseReport(r.stdout);
  assert.equal(report.ok, false);
  const [device] = report.checks;
  assert.equal(device.what, "/nonexistent/kvm");
  assert.equal(device.ok, false);
  assert.match(device.detail, /\/nonexistent\/kvm/);
  assert.equal(report.checks.at(-1)!.what, "hardware virtualization");
});

Deno.test("check without --json prints one marked line per check and a verdict", async () => {
  const r = await denovisor(["check"], { env: { DENOVISOR_KVM_DEVICE: "/nonexistent/kvm" } });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^\[FAIL\] \/nonexistent\/kvm: /);
  assert.match(lines.at(-2)!, /^\[( ok |WARN)\] hardware virtualization: /);
  assert.equal(lines.at(-1), "This host cannot run VMs (see FAIL).");
});

Deno.test("check --json on this host agrees with whether KVM tests can run", async () => {
  const r = await denovisor(["check", "--json"]);
  const report = parseReport(r.stdout);
  assert.equal(r.code, report.ok ? 0 : 1, r.stdout + r.stderr);
  if (kvmUnavailable !== undefined) {
    assert.equal(report.ok, false);
    assert.equal(report.checks[0].ok, false);
    assert.equal(report.checks[0].detail, kvmUnavailable);
    return;
  }
  // KVM opens: the API version, every capability Denovisor needs, and the vCPU limit.
  const byName = new Map(report.checks.map((c) => [c.what, c]));
  assert.equal(byName.get("API version")?.detail, "12");
  for (const [cap] of REQUIRED_CAPABILITIES) {
    assert.ok(byName.has(`KVM_CAP_${cap}`), `no check for KVM_CAP_${cap}`);
  }
  assert.match(byName.get("max vCPUs per VM")?.detail ?? "", /^\d+$/);
  assert.equal(report.ok, true, JSON.stringify(report.checks.filter((c) => !c.ok)));
  assert.equal(r.code, 0);
});
