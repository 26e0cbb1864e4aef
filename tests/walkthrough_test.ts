/**
 * The README's walkthrough, step by step, as a newcomer types it: install the service (staged
 * under a prefix, the unit verified), run the daemon, make a pool and a qcow2 volume, define a
 * domain with that volume and a NIC, start it, watch its console, pause, resume, shut it down.
 * If this test fails, the README is wrong. The `list` output the README shows is compared too
 * (its other shown outputs: tests/readme_output_test.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { denovisor, guest } from "./cli_support.ts";
import { kvmTest } from "./kvm_support.ts";
import { TestDaemon } from "./daemon_support.ts";
import { readmeBlock } from "./readme_support.ts";

/** The README's `denovisor`: the bin/ wrapper that runs the program from source. */
const WRAPPER = new URL("../bin/denovisor", import.meta.url).pathname;

/** Runs one CLI step against `daemon`; fails with the step's output unless it exits 0. */
async function step(daemon: TestDaemon, ...args: string[]): Promise<string> {
  const result = await new Deno.Command(WRAPPER, {
    args: [...args, "--socket", daemon.socket, "--state-dir", daemon.dir],
    stdin: "null",
  }).output();
  const [stdout, stderr] = [result.stdout, result.stderr].map((b) => new TextDecoder().decode(b));
  assert.equal(
    result.code,
    0,
    `denovisor ${args.join(" ")} exited ${result.code}:\n${stdout}${stderr}`,
  );
  return stdout;
}

/** The State column of `denovisor list` for `name`. */
async function listedState(daemon: TestDaemon, name: string): Promise<string> {
  const rows = (await step(daemon, "list")).split("\n").map((line) => line.trim().split(/\s+/));
  const row = rows.find((columns) => columns[1] === name);
  assert.ok(row, `${name} is not in the list`);
  return row[2];
}

kvmTest(
  "README walkthrough: install, pool, volume, domain with disk and NIC, full lifecycle",
  async () => {
    const prefix = await Deno.makeTempDir({ prefix: "denovisor-walkthrough-install-" });
    const daemon = await TestDaemon.start();
    try {
      // 1. Install the service (staged under a prefix here; on a host: `denovisor install --enable`).
      const installed = await denovisor(["install", "--prefix", prefix]);
      assert.equal(installed.code, 0, installed.stderr);
      const unit = await Deno.readTextFile(`${prefix}/etc/systemd/system/denovisor.service`);
      assert.match(unit, /^Type=notify$/m);
      assert.match(unit, /^KillMode=process$/m);

      // 2. A pool and a qcow2 volume in it.
      const images = `${daemon.dir}/images`;
      await step(daemon, "pool", "define", "default", "--type", "dir", "--path", images);
      await step(daemon, "pool", "build", "default");
      await step(daemon, "pool", "start", "default");
      await step(daemon, "vol", "create", "web", "1G", "--format", "qcow2");

      // 3. A domain with that volume and a NIC on a tap the VMM creates.
      const definitionFile = `${daemon.dir}/web.json`;
      await Deno.writeTextFile(
        definitionFile,
        JSON.stringify({
          name: "web",
          vcpus: 2,
          memory: "64M",
          boot: { kernel: guest("domain") },
          disks: [{ pool: "default", volume: "web" }],
          nics: [{ tap: "auto" }],
        }),
      );
      await step(daemon, "define", definitionFile);
      await step(daemon, "start", "web");
      assert.equal(await listedState(daemon, "web"), "running");
      const info = JSON.parse(await step(daemon, "info", "web", "--json"));
      assert.equal(info.definition.disks[0].volume, "web");
      assert.match(info.definition.nics[0].mac, /^52:54:00:/);

      // 4. Watch the console (read-only, as a second viewer would): the guest's banner and ticks.
      await daemon.waitForLog("web", "tick 2");
      const console = await denovisor(
        ["console", "web", "--read-only", "--socket", daemon.socket, "--state-dir", daemon.dir],
        { timeoutMs: 4_000 },
      );
      assert.match(console.stdout, /domain guest up/);

      // 5. Pause and resume.
      await step(daemon, "pause", "web");
      assert.equal(await listedState(daemon, "web"), "paused");
      // `denovisor pause web && denovisor list` prints what the README shows.
      assert.equal(
        (await step(daemon, "list")).trimEnd(),
        (await readmeBlock(" Id   Name   State")).join("\n"),
      );
      await step(daemon, "resume", "web");
      assert.equal(await listedState(daemon, "web"), "running");

      // 6. Shut it down: Ctrl-Alt-Del reaches the guest, which powers off.
      await step(daemon, "shutdown", "web", "--timeout", "30");
      assert.equal(await listedState(daemon, "web"), "shutoff");
      const log = await (await daemon.client.request("GET", "/v1/domains/web/logs?lines=1000"))
        .text();
      assert.match(log, /ctrl-alt-del: powering off/);

      // The volume the guest had open is a clean qcow2 image by qemu-img's judgement.
      const check = await new Deno.Command("qemu-img", { args: ["check", `${images}/web`] })
        .output();
      assert.equal(check.code, 0, new TextDecoder().decode(check.stdout));
    } finally {
      await daemon.cleanup();
      await Deno.remove(prefix, { recursive: true });
    }
  },
);
