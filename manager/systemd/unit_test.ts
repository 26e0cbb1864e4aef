import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { denovisorCommand, denovisorUnit, quoteExecArgument, UNIT_MARKER } from "./unit.ts";

function settings(unit: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of unit.split("\n")) {
    const eq = line.indexOf("=");
    if (eq < 0 || line.startsWith("#")) continue;
    const key = line.slice(0, eq);
    map.set(key, [...(map.get(key) ?? []), line.slice(eq + 1)]);
  }
  return map;
}

Deno.test("denovisorCommand() runs main.ts through deno when not compiled", () => {
  const main = fileURLToPath(new URL("../../main.ts", import.meta.url));
  assert.deepEqual(denovisorCommand(), [
    Deno.execPath(),
    "run",
    "--allow-all",
    "--no-prompt",
    main,
  ]);
});

Deno.test("denovisorUnit() keeps domains running across daemon stops and restarts", () => {
  const unit = denovisorUnit({ command: ["/usr/bin/denovisor"] });
  const s = settings(unit);
  assert.ok(unit.startsWith(`${UNIT_MARKER}\n[Unit]\n`));
  assert.deepEqual(s.get("ExecStart"), [
    "/usr/bin/denovisor daemon --state-dir /var/lib/denovisor --socket /run/denovisor/api.sock",
  ]);
  assert.deepEqual(s.get("Type"), ["notify"]);
  assert.deepEqual(s.get("NotifyAccess"), ["main"]);
  assert.deepEqual(s.get("KillMode"), ["process"]);
  assert.deepEqual(s.get("Delegate"), ["yes"]);
  assert.deepEqual(s.get("RuntimeDirectory"), ["denovisor"]);
  assert.deepEqual(s.get("RuntimeDirectoryPreserve"), ["yes"]);
  assert.deepEqual(s.get("StateDirectory"), ["denovisor"]);
  assert.deepEqual(s.get("Restart"), ["on-failure"]);
  assert.deepEqual(s.get("WantedBy"), ["multi-user.target"]);
  assert.equal(s.get("CacheDirectory"), undefined);
  for (const breaksDevices of ["PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"]) {
    assert.equal(s.get(breaksDevices), undefined, breaksDevices);
  }
});

Deno.test("denovisorUnit() names directories outside /var/lib and /run explicitly", () => {
  const s = settings(
    denovisorUnit({
      command: ["/opt/deno", "run", "--allow-all", "/srv/my denovisor/main.ts"],
      stateDir: "/srv/state",
      socket: "/srv/run/api.sock",
      socketGroup: "kvm",
    }),
  );
  assert.deepEqual(s.get("ExecStart"), [
    '/opt/deno run --allow-all "/srv/my denovisor/main.ts" daemon --state-dir /srv/state --socket /srv/run/api.sock --socket-group kvm',
  ]);
  assert.deepEqual(s.get("ReadWritePaths"), ["-/srv/state", "-/srv/run"]);
  assert.equal(s.get("StateDirectory"), undefined);
  assert.deepEqual(s.get("Environment"), ["DENO_DIR=/var/cache/denovisor/deno"]);
});

Deno.test("quoteExecArgument() escapes what systemd would expand", () => {
  assert.equal(quoteExecArgument("/usr/bin/denovisor"), "/usr/bin/denovisor");
  assert.equal(quoteExecArgument("a b"), '"a b"');
  assert.equal(quoteExecArgument("100%"), "100%%");
  assert.equal(quoteExecArgument("$HOME"), "$$HOME");
  assert.equal(quoteExecArgument('say "x"'), '"say \\"x\\""');
  assert.equal(quoteExecArgument(""), '""');
});
