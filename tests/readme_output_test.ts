/**
 * The outputs README.md shows, compared with what the commands print today: the demo
 * guest's output (Set-up) and the REPL session of the walkthrough. The walkthrough's own
 * `list` output is compared in tests/walkthrough_test.ts, which runs those steps. If this
 * test fails, the README shows something the program no longer prints: fix the README
 * block (or the program).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { kvmTest } from "./kvm_support.ts";
import { TestDaemon } from "./daemon_support.ts";
import { guest } from "./cli_support.ts";
import { PtySession } from "./pty_support.ts";
import { readmeBlock } from "./readme_support.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

kvmTest("README: the demo guest's output is what `denovisor run` prints", async () => {
  const shown = await readmeBlock("Denovisor demo guest");
  // scripts/demo.sh with no arguments: `denovisor run` of the embedded demo guest.
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", MAIN, "run"],
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(result.stdout).replace(/\r\n/g, "\n").trim();
  assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
  assert.equal(stdout, shown.join("\n"));
}, 120_000);

/** The REPL block split at its prompts: each command line with the lines it printed. */
function segments(lines: string[]): Map<string, string[]> {
  const result = new Map<string, string[]>();
  let current = "greeting";
  result.set(current, []);
  for (const raw of lines) {
    // An event printed while the prompt was up is redrawn above it: on the stripped
    // screen it reads "denovisor> * domain ...", and belongs to the command before.
    const line = raw.replace(/^denovisor> (?=\* domain )/, "");
    if (line.startsWith("denovisor> ")) {
      current = line.trimEnd();
      result.set(current, []);
    } else if (line.trim() !== "") {
      result.get(current)!.push(normalize(line));
    }
  }
  return result;
}

/** What differs from one run to the next: pids, the host, the socket. */
function normalize(line: string): string {
  return line
    .replace(/VMM pid \d+/, "VMM pid N")
    .replace(/^Denovisor \S+ on \S+ \([^)]*\):/, "Denovisor VERSION on HOST (SOCKET):")
    .trimEnd();
}

kvmTest("README: the REPL session of the walkthrough prints what the README shows", async () => {
  const shown = await readmeBlock("$ denovisor repl");
  const expected = segments(shown.slice(1));
  const daemon = await TestDaemon.start();
  // web.json as the walkthrough writes it, less the disk and NIC (they print nothing here).
  await Deno.writeTextFile(
    join(daemon.dir, "web.json"),
    JSON.stringify({ name: "web", vcpus: 2, memory: "64M", boot: { kernel: guest("domain") } }),
  );
  const repl = new PtySession(
    ["--socket", daemon.socket, "--history", join(daemon.dir, "history")],
    {},
    daemon.dir,
  );
  try {
    await repl.expect(/denovisor> $/);
    const commands = [...expected.keys()].filter((key) => key !== "greeting");
    assert.ok(commands.length >= 5, `only ${commands.length} commands in the README's session`);
    for (const command of commands) {
      const line = command.slice("denovisor> ".length);
      // The guest powers off on Ctrl-Alt-Del once it runs: wait for its first ticks.
      if (line.startsWith("shutdown")) await daemon.waitForLog("web", "tick 2");
      await repl.send(`${line}\r`);
      const wanted = expected.get(command)!;
      // Each line the README shows after the command, in any order (an event line and
      // the command's answer race), then the next prompt.
      for (const each of wanted) {
        const pattern = each.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(
          "VMM pid N",
          "VMM pid \\d+",
        );
        await repl.waitFor(new RegExp(`^${pattern}$`, "m"), 90_000);
      }
      await repl.expect(new RegExp(`${line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\n`));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    await repl.send("exit\r");
    assert.equal(await repl.close(), 0);
    // Nothing more and nothing less than the README shows, command by command.
    const actual = segments(repl.text.split("\n").filter((line) => line !== "denovisor> exit"));
    actual.set("greeting", actual.get("greeting")!.filter((line) => line !== "exit"));
    for (const [command, lines] of expected) {
      assert.deepEqual(
        [...(actual.get(command) ?? [])].sort(),
        [...lines].sort(),
        `${command}: the REPL printed\n${repl.text}`,
      );
    }
  } catch (error) {
    await repl.close();
    throw error;
  } finally {
    await daemon.cleanup();
  }
}, 240_000);
