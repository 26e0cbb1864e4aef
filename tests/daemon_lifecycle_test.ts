/**
 * The daemon API over its real socket, with real VMMs running guests/domain.c: the full
 * lifecycle of a persistent and of a transient domain, and the changes a running domain
 * accepts.
 */

import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { domainGuest, EventRecorder, processAlive, TestDaemon } from "./daemon_support.ts";
import { guest } from "./cli_support.ts";
import { attachConsole } from "../vmm/vmm_client.ts";
import type { DomainInfo, DomainStats, DomainSummary } from "../manager/api_types.ts";

kvmTest(
  "daemon: define, start, pause, resume, shutdown, destroy and undefine over the socket",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      const events = await EventRecorder.open(api);
      const defined = await api.post<DomainInfo>("/v1/domains", domainGuest("web"));
      assert.equal(defined.state, "shutoff");
      assert.equal(defined.persistent, true);
      assert.match(defined.uuid, /^[0-9a-f-]{36}$/);
      assert.equal((await Deno.stat(`${daemon.dir}/domains/web.json`)).isFile, true);

      const started = await api.post<DomainInfo>("/v1/domains/web/start");
      assert.equal(started.state, "running");
      assert.ok(started.pid && processAlive(started.pid), "the VMM process runs");
      assert.equal(started.consoleSocket, `${daemon.dir}/domains/web/console.sock`);
      await daemon.waitForLog("web", "tick 1");

      const list = await api.get<DomainSummary[]>("/v1/domains");
      assert.deepEqual(list.map((d) => [d.name, d.state, d.pid]), [[
        "web",
        "running",
        started.pid,
      ]]);

      assert.equal((await api.post<DomainInfo>("/v1/domains/web/pause")).state, "paused");
      assert.equal((await daemon.info("web")).state, "paused");
      assert.equal((await api.post<DomainInfo>("/v1/domains/web/resume")).state, "running");
      const stats = await api.get<DomainStats>("/v1/domains/web/stats");
      assert.equal(stats.vcpus.length, 1);
      assert.equal(stats.memory.guestBytes, 32 * 1024 * 1024);

      // Graceful: Ctrl-Alt-Del, the guest powers off, the call answers once it is off.
      const off = await api.post<DomainInfo>("/v1/domains/web/shutdown", { timeoutSeconds: 20 });
      assert.equal(off.state, "shutoff");
      assert.equal(off.pid, undefined);
      assert.equal(processAlive(started.pid!), false, "the VMM has exited");
      assert.match(off.lastEnd ?? "", /exited with status 0|powered off/);

      const again = await api.post<DomainInfo>("/v1/domains/web/start");
      assert.notEqual(again.pid, started.pid);
      const destroyed = await api.post<DomainInfo>("/v1/domains/web/destroy");
      assert.equal(destroyed.state, "shutoff");
      assert.equal(processAlive(again.pid!), false);

      await api.delete("/v1/domains/web");
      await assert.rejects(() => daemon.info("web"), { status: 404 });
      await assert.rejects(() => Deno.stat(`${daemon.dir}/domains/web.json`), Deno.errors.NotFound);

      const kinds = events.events.filter((e) => e.domain === "web").map((e) => e.kind);
      assert.deepEqual(kinds, [
        "defined",
        "started",
        "paused",
        "resumed",
        "shutdown",
        "started",
        "destroyed",
        "undefined",
      ]);
      await events.close();
    } finally {
      await daemon.cleanup();
    }
  },
  120_000,
);

kvmTest(
  "daemon: a transient domain (create) runs at once, is never stored and vanishes when it stops",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      const info = await api.post<DomainInfo>("/v1/domains?transient=1", domainGuest("once"));
      assert.equal(info.state, "running");
      assert.equal(info.persistent, false);
      await assert.rejects(
        () => Deno.stat(`${daemon.dir}/domains/once.json`),
        Deno.errors.NotFound,
      );
      await api.post("/v1/domains/once/destroy");
      await assert.rejects(() => daemon.info("once"), { status: 404 });
      assert.equal(processAlive(info.pid!), false);
    } finally {
      await daemon.cleanup();
    }
  },
  120_000,
);

kvmTest(
  "daemon: a running domain takes edits, vCPU counts and autostart for its next start",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      const running = await daemon.run(domainGuest("db"));
      const edited = await api.put<DomainInfo>("/v1/domains/db", {
        ...running.definition,
        memory: 48,
      });
      assert.equal(edited.state, "running");
      assert.equal(edited.pid, running.pid);
      assert.equal(edited.note, "the domain is running; the changes apply at its next start");
      // What it runs with, and what its next start gives (issue 16: both, not only the next).
      assert.equal(edited.memoryBytes, running.memoryBytes);
      assert.deepEqual(edited.next, { memoryBytes: 48 * 1024 * 1024 });

      const vcpus = await api.put<DomainInfo>("/v1/domains/db/vcpus", { count: 2 });
      assert.equal(vcpus.vcpus, running.vcpus);
      assert.equal(vcpus.next?.vcpus, 2);
      assert.equal(
        vcpus.note,
        "the domain is running; the new vCPU count (2) applies at its next start",
      );
      const stored = JSON.parse(await Deno.readTextFile(`${daemon.dir}/domains/db.json`));
      assert.equal(stored.vcpus, 2);
      assert.equal(stored.memory, 48);

      assert.equal(
        (await api.put<DomainInfo>("/v1/domains/db/autostart", { enabled: true })).autostart,
        true,
      );
      // No balloon in this definition: mem-set says how to get one.
      await assert.rejects(
        () => api.put("/v1/domains/db/memory", { targetBytes: 16 * 1024 * 1024 }),
        {
          status: 409,
          message:
            `Domain 'db' has no balloon device; set "balloon": true in its definition and restart it`,
        },
      );
      await api.post("/v1/domains/db/destroy");
      const restarted = await api.post<DomainInfo>("/v1/domains/db/start");
      const stats = await api.get<DomainStats>("/v1/domains/db/stats");
      assert.equal(stats.vcpus.length, 2);
      assert.equal(stats.memory.guestBytes, 48 * 1024 * 1024);
      assert.ok(restarted.pid);
    } finally {
      await daemon.cleanup();
    }
  },
  120_000,
);

kvmTest(
  "daemon: reset keeps the VMM, mem-set moves the balloon, a guest power-off applies on_poweroff",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      const events = await EventRecorder.open(api);
      const info = await daemon.run(domainGuest("box", { balloon: true, memory: 64 }));
      await daemon.waitForLog("box", "domain guest up");
      const rebooted = await api.post<DomainInfo>("/v1/domains/box/reset");
      assert.deepEqual([rebooted.state, rebooted.pid], ["running", info.pid]);
      await events.waitFor((e) => e.domain === "box" && e.kind === "rebooted");

      // domain.c has no balloon driver: the target is accepted; the guest would act on it.
      const set = await api.put<DomainInfo>("/v1/domains/box/memory", {
        targetBytes: 48 * 1024 * 1024,
      });
      assert.equal(set.state, "running");
      assert.match(
        await daemon.waitForLog("box", "balloon target"),
        /balloon target set to 16777216 bytes/,
      );
      await assert.rejects(() => api.put("/v1/domains/box/memory", { targetBytes: 1024 ** 3 }), {
        status: 400,
        message:
          "targetBytes: 1073741824 is above the domain's memory (67108864 bytes); the balloon " +
          "can only give memory back (--config sets the memory of its next start)",
      });
      await api.post("/v1/domains/box/destroy");

      // The demo guest prints its report and powers off by itself: on_poweroff=destroy.
      await api.post("/v1/domains?start=1", { name: "demo", boot: { demo: true }, memory: 32 });
      const off = await daemon.waitFor("demo", (i) => i.state === "shutoff");
      assert.match(off.lastEnd ?? "", /on_poweroff=destroy$/);
      const shutdown = await events.waitFor((e) => e.domain === "demo" && e.kind === "shutdown");
      assert.match(shutdown.detail ?? "", /on_poweroff=destroy$/);
      await events.close();
    } finally {
      await daemon.cleanup();
    }
  },
  120_000,
);

kvmTest(
  'daemon: a domain with console "virtio" gets a virtio console that takes the input',
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const info = await daemon.run({
        name: "vcon",
        boot: { kernel: guest("virtio_console") },
        memory: 32,
        console: "virtio",
        onPoweroff: "destroy",
      });
      assert.equal(info.definition.console, "virtio");
      await daemon.waitForLog("vcon", "virtio_console: ready");
      const runDir = info.consoleSocket!.replace(/\/console\.sock$/, "");
      const console = await attachConsole(runDir, "rw");
      try {
        await console.conn.write(new TextEncoder().encode("hello over virtio\nquit\n"));
        const log = await daemon.waitForLog("vcon", "virtio_console: all passed");
        assert.match(log, /vcon-echo: hello over virtio/);
      } finally {
        console.conn.close();
      }
    } finally {
      await daemon.cleanup();
    }
  },
);
