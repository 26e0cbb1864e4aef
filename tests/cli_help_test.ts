/** Every command answers --help, and `help` and `version` work. */
import assert from "node:assert/strict";
import { denovisor } from "./cli_support.ts";

Deno.test("every command prints its usage for --help and exits 0", async () => {
  for (const command of ["run", "check", "version"]) {
    const r = await denovisor([command, "--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Usage: denovisor ${command}`));
  }
  const help = await denovisor(["help", "run"]);
  assert.match(help.stdout, /^Usage: denovisor run/);
  assert.match((await denovisor(["--help"])).stdout, /\nHost:\n(.*\n)* {2}run {2,}Boot a VM/);
});

Deno.test("no command prints the command list and exits 2", async () => {
  const r = await denovisor([]);
  assert.equal(r.code, 2);
  assert.match(r.stdout, /Usage: denovisor <command>/);
});

Deno.test("version prints Denovisor's and Deno's versions", async () => {
  const r = await denovisor(["version", "--json"]);
  assert.equal(r.code, 0);
  const { denovisor: version, deno } = JSON.parse(r.stdout);
  assert.match(version, /^\d+\.\d+\.\d+$/);
  assert.equal(deno, Deno.version.deno);
});

Deno.test("a mistyped verb, help topic or option exits 2 and suggests the closest", async () => {
  const verb = await denovisor(["strat", "web"]);
  assert.equal(verb.code, 2);
  assert.match(verb.stderr, /Unknown command 'strat' \(did you mean 'start'\?\)/);
  const topic = await denovisor(["help", "shutdwon"]);
  assert.equal(topic.code, 2);
  assert.match(topic.stderr, /help: no command 'shutdwon' \(did you mean 'shutdown'\?\)/);
  const option = await denovisor(["list", "--jsno"]);
  assert.equal(option.code, 2);
  assert.match(option.stderr, /Unknown option '--jsno' \(did you mean '--json'\?\)/);
  assert.equal((await denovisor(["help", "xyzzy"])).code, 2);
});
