import assert from "node:assert/strict";
import { candidatesFor as complete, completionCommand } from "./completion_command.ts";

// No daemon listens at this socket: name lookups fail and offer nothing, commands and
// options still complete. (Not through the environment: it is shared by every test file.)
const NO_DAEMON = "/nonexistent/denovisor-test/api.sock";
const candidatesFor = (line: string, cursor: number) => complete(line, cursor, NO_DAEMON);

Deno.test("__complete offers verbs, subcommands and options filtered by what is typed", async () => {
  const verbs = await candidatesFor("denovisor sta", 13);
  assert(verbs.includes("start"), verbs.join(","));
  assert(verbs.every((verb) => verb.startsWith("sta")));
  const top = await candidatesFor("denovisor ", 10);
  for (const name of ["start", "pool", "vol", "img", "daemon", "completion"]) {
    assert(top.includes(name), `${name} missing from ${top.join(",")}`);
  }
  const vol = await candidatesFor("denovisor vol cr", 16);
  assert(vol.includes("create"), vol.join(","));
  const options = await candidatesFor("denovisor list --j", 18);
  assert.deepEqual(options, ["--json"]);
});

Deno.test("__complete completes only up to the cursor and survives a missing daemon", async () => {
  assert.deepEqual(await candidatesFor("denovisor start ", 16), []);
  const partial = await candidatesFor("denovisor lis something-after", 13);
  assert(partial.includes("list"), partial.join(","));
  assert.deepEqual(await candidatesFor("denovisor", 2), []);
});

Deno.test("completion prints a script for bash, zsh and fish, and refuses other shells", () => {
  for (const shell of ["bash", "zsh", "fish"]) assert.equal(completionCommand([shell]), 0);
  assert.throws(() => completionCommand(["tcsh"]), /expected one of bash, zsh, fish/);
  assert.throws(() => completionCommand([]), /expected one of/);
});

Deno.test("the bash script completes through denovisor __complete in a real bash", async () => {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const wrapper = await Deno.makeTempFile({ suffix: ".sh" });
  try {
    // A 'denovisor' function standing in for the installed binary.
    const script = new TextDecoder().decode(
      (await new Deno.Command("deno", { args: ["run", "-A", main, "completion", "bash"] })
        .output()).stdout,
    );
    await Deno.writeTextFile(
      wrapper,
      `export DENOVISOR_SOCKET=${NO_DAEMON}\n` +
        `denovisor() { deno run -A ${main} "$@"; }\n${script}\n` +
        `COMP_LINE="denovisor shutd"; COMP_POINT=15; _denovisor; printf '%s\\n' "\${COMPREPLY[@]}"\n`,
    );
    const output = await new Deno.Command("bash", { args: [wrapper] }).output();
    assert.equal(new TextDecoder().decode(output.stdout).trim(), "shutdown");
  } finally {
    await Deno.remove(wrapper);
  }
});
