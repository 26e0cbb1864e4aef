/**
 * The systemd unit as systemd itself reads it (`systemd-analyze verify`), and
 * `denovisor install` into a temporary unit directory, run as users run it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { denovisorCommand, denovisorUnit } from "../manager/systemd/unit.ts";
import { denovisor } from "./cli_support.ts";

async function verify(unitPath: string): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command("systemd-analyze", {
    args: ["verify", "--man=no", unitPath],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, output: (decoder.decode(stdout) + decoder.decode(stderr)).trim() };
}

function hasSystemdAnalyze(): boolean {
  try {
    new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

async function withTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-install-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "denovisor.service passes systemd-analyze verify, under deno and compiled",
  ignore: !hasSystemdAnalyze(),
  async fn() {
    await withTempDir(async (dir) => {
      // The compiled form: any real executable stands in for dist/denovisor.
      for (const command of [denovisorCommand(), [Deno.execPath()]]) {
        const path = join(dir, "denovisor.service");
        await Deno.writeTextFile(path, denovisorUnit({ command }));
        const result = await verify(path);
        assert.equal(result.output, "", `systemd-analyze verify complained:\n${result.output}`);
        assert.equal(result.code, 0);
      }
      // And it does complain about a broken unit, so the check above means something.
      const broken = join(dir, "denovisor.service");
      await Deno.writeTextFile(
        broken,
        denovisorUnit({ command: ["/nonexistent/denovisor"] }).replace(
          "KillMode=process",
          "KillMode=sometimes",
        ),
      );
      const result = await verify(broken);
      assert.match(result.output, /kill mode/i);
      assert.match(result.output, /\/nonexistent\/denovisor/);
    });
  },
});

Deno.test("denovisor install writes the unit and 0700 directories, and refuses to overwrite a different unit", async () => {
  await withTempDir(async (dir) => {
    const unitDir = join(dir, "units");
    const unitPath = join(unitDir, "denovisor.service");
    const base = [
      "install",
      "--unit-dir",
      unitDir,
      "--state-dir",
      join(dir, "state"),
      "--socket",
      join(dir, "run", "api.sock"),
    ];
    const dry = await denovisor([...base, "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /would write .*denovisor.service:\n {2}# Written by 'denovisor install'/,
    );
    await assert.rejects(Deno.stat(unitPath), Deno.errors.NotFound);

    const first = await denovisor(base);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`wrote ${unitPath}`));
    assert.match(first.stdout, /the service runs: .*main\.ts daemon/);
    assert.match(first.stdout, /skipped systemctl daemon-reload|ran systemctl daemon-reload/);
    const unit = await Deno.readTextFile(unitPath);
    assert.match(
      unit,
      new RegExp(`--state-dir ${join(dir, "state")} --socket ${join(dir, "run", "api.sock")}`),
    );
    assert.equal((await Deno.stat(join(dir, "state"))).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(join(dir, "run"))).mode! & 0o777, 0o700);

    const again = await denovisor(base);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /is already up to date/);

    await Deno.writeTextFile(unitPath, "[Service]\nExecStart=/bin/true\n");
    const refused = await denovisor(base);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /exists and differs from the unit this denovisor writes; .* add --force/,
    );
    assert.equal(await Deno.readTextFile(unitPath), "[Service]\nExecStart=/bin/true\n");
    const uninstallOther = await denovisor([...base, "--uninstall"]);
    assert.equal(uninstallOther.code, 1);
    assert.match(uninstallOther.stderr, /was not written by 'denovisor install'/);

    const forced = await denovisor([...base, "--force"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /replaced /);
    assert.equal(await Deno.readTextFile(unitPath), unit);

    const removed = await denovisor([...base, "--uninstall"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /removed .*running domains keep running/);
    await assert.rejects(Deno.stat(unitPath), Deno.errors.NotFound);
  });
});

Deno.test("denovisor install --prefix stages everything below the prefix", async () => {
  await withTempDir(async (dir) => {
    const result = await denovisor([
      "install",
      "--prefix",
      dir,
      "--executable",
      "/usr/bin/denovisor",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const unit = await Deno.readTextFile(join(dir, "etc/systemd/system/denovisor.service"));
    assert.match(
      unit,
      /^ExecStart=\/usr\/bin\/denovisor daemon --state-dir \/var\/lib\/denovisor --socket \/run\/denovisor\/api.sock$/m,
    );
    assert.ok((await Deno.stat(join(dir, "var/lib/denovisor"))).isDirectory);
    assert.ok((await Deno.stat(join(dir, "run/denovisor"))).isDirectory);
    assert.match(result.stdout, /staged install: systemctl not run/);
  });
});
