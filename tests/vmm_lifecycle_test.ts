/**
 * `denovisor vmm` as the daemon runs it: a child process with a config file, driven over
 * its control socket, ending with end.json (or, when killed, without it).
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import {
  countTicks,
  delay,
  domainConfig,
  exists,
  spawnVmm,
  startVmm,
  withVmm,
} from "./vmm_support.ts";
import { attachConsole, readEndRecord } from "../vmm/vmm_client.ts";
import { runFiles } from "../vmm/run_files.ts";
import { guest } from "./cli_support.ts";

const UP = /domain guest up/;

kvmTest("the VMM answers status, and pause stops the guest's heartbeat until resume", async () => {
  await withVmm({}, async (vmm) => {
    const status = await vmm.client.status();
    assert.equal(status.name, "t");
    assert.equal(status.state, "running");
    assert.equal(status.boots, 1);
    assert.equal(status.pid, vmm.child.pid);
    assert.equal(
      (await Deno.readTextFile(runFiles(vmm.dir).pidFile)).trim(),
      String(vmm.child.pid),
    );
    assert.equal((await Deno.stat(runFiles(vmm.dir).controlSocket)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(runFiles(vmm.dir).consoleSocket)).mode! & 0o777, 0o600);
    // Once started, stdout and stderr go to the log, not to the spawner's pipe.
    for (const fd of [1, 2]) {
      assert.equal(await Deno.readLink(`/proc/${vmm.child.pid}/fd/${fd}`), vmm.config.logFile);
    }

    await vmm.waitLog(/tick 2/);
    assert.equal((await vmm.client.pause()).state, "paused");
    assert.equal((await vmm.client.status()).state, "paused");
    // The VMM logs "paused" after the vCPUs stopped, through the same ordered queue as the
    // guest's output: once it is in the file, so is everything the guest wrote before.
    await vmm.waitLog(/denovisor vmm: paused\n/);
    const frozen = countTicks(vmm.log());
    await delay(1500); // three heartbeats' worth
    assert.equal(countTicks(vmm.log()), frozen, "no heartbeat while paused");

    assert.equal((await vmm.client.resume()).state, "running");
    const from = vmm.log().length;
    await vmm.waitLog(/tick \d+/, { from, timeoutMs: 20_000 });
    assert.ok(countTicks(vmm.log()) > frozen);
  });
}, 120_000);

kvmTest(
  "shutdown presses Ctrl-Alt-Del; the guest powers off and end.json says poweroff",
  async () => {
    await withVmm({}, async (vmm) => {
      await vmm.waitLog(UP);
      assert.equal((await vmm.client.shutdown()).state, "shutting-down");
      const { code } = await vmm.exited;
      assert.equal(code, 0);
      assert.match(vmm.log(), /ctrl-alt-del: powering off/);
      const end = await readEndRecord(vmm.dir);
      assert.equal(end?.kind, "poweroff");
      assert.ok(!Number.isNaN(Date.parse(end!.time)));
      for (const file of ["controlSocket", "consoleSocket", "pidFile"] as const) {
        assert.equal(await exists(runFiles(vmm.dir)[file]), false, `${file} removed`);
      }
    });
  },
  120_000,
);

kvmTest("destroy answers shutoff, writes end.json kind destroyed and exits 0", async () => {
  await withVmm({}, async (vmm) => {
    await vmm.waitLog(UP);
    const status = await vmm.client.destroy();
    assert.equal(status.state, "shutoff");
    // The answer comes after end.json is written.
    assert.equal((await readEndRecord(vmm.dir))?.kind, "destroyed");
    assert.equal((await vmm.exited).code, 0);
    assert.equal(await exists(runFiles(vmm.dir).pidFile), false);
  });
}, 120_000);

kvmTest("SIGTERM destroys the VM; SIGHUP is ignored", async () => {
  await withVmm({}, async (vmm) => {
    await vmm.waitLog(UP);
    Deno.kill(vmm.child.pid, "SIGHUP");
    await vmm.waitLog(/SIGHUP ignored/);
    assert.equal((await vmm.client.status()).state, "running");
    Deno.kill(vmm.child.pid, "SIGTERM");
    assert.equal((await vmm.exited).code, 0);
    const end = await readEndRecord(vmm.dir);
    assert.equal(end?.kind, "destroyed");
    assert.match(end!.detail, /SIGTERM/);
  });
}, 120_000);

kvmTest(
  "a VMM killed with SIGKILL leaves no end.json (the daemon reads that as a crash)",
  async () => {
    await withVmm({}, async (vmm) => {
      await vmm.waitLog(UP);
      vmm.child.kill("SIGKILL");
      const { signal } = await vmm.exited;
      assert.equal(signal, "SIGKILL");
      assert.equal(await readEndRecord(vmm.dir), undefined);
    });
  },
  120_000,
);

kvmTest(
  "a guest reset with onReboot restart rebuilds the machine in the same process",
  async () => {
    await withVmm({ onReboot: "restart" }, async (vmm) => {
      const { conn } = await attachConsole(vmm.dir, "rw");
      try {
        await vmm.waitLog(UP);
        await conn.write(new TextEncoder().encode("reset\n"));
        await vmm.waitLog(/boot 2:/);
        const status = await vmm.client.status();
        assert.equal(status.boots, 2);
        assert.equal(status.pid, vmm.child.pid);
        assert.equal(status.state, "running");
        // The console stays attached across the rebuild: input reaches the new machine.
        const from = vmm.log().indexOf("boot 2:");
        await vmm.waitLog(UP, { from });
        await conn.write(new TextEncoder().encode("still here\n"));
        await vmm.waitLog(/echo: still here/, { from });
        // A reboot request rebuilds it too.
        assert.equal((await vmm.client.reboot()).boots, 3);
      } finally {
        conn.close();
      }
    });
  },
  120_000,
);

kvmTest("a guest reset without restart ends as reboot; a non-zero exit as crash", async () => {
  for (const [line, kind] of [["reset", "reboot"], ["exit 3", "crash"]]) {
    const vmm = await startVmm({ onReboot: "destroy" });
    try {
      const { conn } = await attachConsole(vmm.dir, "rw");
      await vmm.waitLog(UP);
      await conn.write(new TextEncoder().encode(`${line}\n`));
      assert.equal((await vmm.exited).code, 0);
      conn.close();
      const end = await readEndRecord(vmm.dir);
      assert.equal(end?.kind, kind, JSON.stringify(end));
    } finally {
      await vmm.cleanup();
    }
  }
}, 120_000);

kvmTest("a VM that cannot be built exits 1 with the reason, before any pid file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-vmm-" });
  try {
    const config = domainConfig(dir, {
      disks: [{ path: `${dir}/missing.img`, format: "raw", readOnly: false, transport: "pci" }],
    });
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
    const child = spawnVmm(`${dir}/config.json`);
    const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
    assert.equal(status.code, 1);
    assert.match(stderr, /missing\.img: no such file/);
    assert.match(await Deno.readTextFile(config.logFile), /cannot start: .*missing\.img/);
    assert.equal(await exists(runFiles(dir).pidFile), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, 120_000);

kvmTest("a second VMM on a run directory that is served is refused", async () => {
  await withVmm({}, async (vmm) => {
    const child = spawnVmm(`${vmm.dir}/config.json`);
    const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
    assert.equal(status.code, 1);
    assert.match(stderr, /Another VMM serves .*vmm\.sock/);
    assert.equal((await vmm.client.status()).state, "running");
  });
}, 120_000);

kvmTest(
  "a guest that answers shutdown with a reset ends as poweroff, even with onReboot restart",
  async () => {
    await withVmm({
      onReboot: "restart",
      boot: { kind: "linux", kernel: guest("domain"), cmdline: "cad=reset" },
    }, async (vmm) => {
      await vmm.waitLog(UP);
      await vmm.client.shutdown();
      assert.equal((await vmm.exited).code, 0);
      assert.match(vmm.log(), /ctrl-alt-del: rebooting/);
      const end = await readEndRecord(vmm.dir);
      assert.equal(end?.kind, "poweroff");
      assert.match(end!.detail, /guest reset after a shutdown request/);
    });
  },
  120_000,
);
