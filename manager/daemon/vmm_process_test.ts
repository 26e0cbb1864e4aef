import assert from "node:assert/strict";
import {
  describeExit,
  processStartTime,
  sameProcessAlive,
  selfCommand,
  warmVmmModules,
  watchProcess,
} from "./vmm_process.ts";

Deno.test("selfCommand() re-runs main.ts under deno when run from source", () => {
  const argv = selfCommand();
  assert.equal(argv[0], Deno.execPath());
  assert.deepEqual(argv.slice(1, 4), ["run", "--allow-all", "--no-prompt"]);
  assert.match(argv[4], /\/main\.ts$/);
});

Deno.test("processStartTime() tells a live process from a dead one and from a reused pid", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const start = processStartTime(child.pid);
  assert.equal(typeof start, "number");
  assert.equal(sameProcessAlive(child.pid, start!), true);
  assert.equal(sameProcessAlive(child.pid, start! + 1), false, "another process with that pid");
  const watch = watchProcess(child.pid, start!, child.status);
  child.kill("SIGKILL");
  assert.equal(describeExit(await watch.exited), "VMM killed by SIGKILL");
  assert.equal(processStartTime(child.pid), undefined);
});

Deno.test("watchProcess() sees a process that is not its child die by polling /proc", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const watch = watchProcess(child.pid, processStartTime(child.pid)!);
  child.kill("SIGTERM");
  await child.status; // Reaped here; the watch only has /proc.
  assert.equal(describeExit(await watch.exited), "VMM exited");
});

Deno.test("warmVmmModules() leaves the VMM's modules transpiled in Deno's cache", async () => {
  const cache = await Deno.makeTempDir({ prefix: "denovisor-deno-dir-" });
  const before = Deno.env.get("DENO_DIR");
  Deno.env.set("DENO_DIR", cache);
  try {
    assert.equal(await warmVmmModules(), undefined);
    const emitted = (dir: string): string[] =>
      [...Deno.readDirSync(dir)].flatMap((entry) =>
        entry.isDirectory ? emitted(`${dir}/${entry.name}`) : [`${dir}/${entry.name}`]
      );
    const files = emitted(`${cache}/gen`);
    for (const module of ["vmm/machine.ts.js", "vmm/vcpu_worker_main.ts.js", "cli/vmm.ts.js"]) {
      assert.ok(files.some((file) => file.endsWith(`/${module}`)), `${module} is not cached`);
    }
  } finally {
    if (before === undefined) Deno.env.delete("DENO_DIR");
    else Deno.env.set("DENO_DIR", before);
    await Deno.remove(cache, { recursive: true });
  }
});
