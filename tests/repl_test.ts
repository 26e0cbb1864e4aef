/**
 * `denovisor repl` driven through a pseudo-terminal (python3's pty module), against a fake
 * daemon and against a real one: Tab completion of verbs and domain names, a full
 * lifecycle with the live event lines, events printed while a line is being typed, Ctrl-C,
 * edit, history across sessions, and piped input. The line editor and completion have
 * unit tests beside them in cli/repl/.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CLIENT_EXIT } from "../cli/output.ts";
import { ApiClient } from "../manager/api_client.ts";
import { type FakeDaemon, startFakeDaemon } from "./fake_daemon.ts";
import { guest } from "./cli_support.ts";
import { TestDaemon } from "./daemon_support.ts";
import { kvmTest } from "./kvm_support.ts";
import { PtySession } from "./pty_support.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

async function withRepl(
  body: (repl: PtySession, daemon: FakeDaemon) => Promise<void>,
  history?: string,
  env: Record<string, string> = {},
): Promise<void> {
  const daemon = await startFakeDaemon();
  await Deno.writeTextFile(
    join(daemon.dir, "web1.json"),
    JSON.stringify({ name: "web1", boot: { demo: true }, vcpus: 2 }),
  );
  const repl = new PtySession([
    "--socket",
    daemon.socket,
    "--history",
    history ?? join(daemon.dir, "history"),
  ], env);
  try {
    await repl.expect(/Type 'help' for commands.*\ndenovisor> /);
    await body(repl, daemon);
    await repl.send("exit\r");
    assert.equal(await repl.close(), 0);
  } catch (error) {
    await repl.close();
    throw error;
  } finally {
    await daemon.close();
  }
}

Deno.test("repl on a terminal: Tab completes a verb and a domain name", async () => {
  await withRepl(async (repl, daemon) => {
    await repl.send(`define ${join(daemon.dir, "web1.json")}\r`);
    await repl.expect(/Domain 'web1' defined/);
    await repl.send("unde\t");
    await repl.expect(/denovisor> undefine $/);
    await repl.send("\x15sta\t\t");
    await repl.expect(/\nstart\s+stats\s*\ndenovisor> sta/);
    await repl.send("rt w\t");
    await repl.expect(/denovisor> start web1 $/);
    await repl.send("\r");
    await repl.expect(/Domain 'web1' started/);
  });
});

Deno.test("repl on a terminal: a full lifecycle prints each state change", async () => {
  await withRepl(async (repl, daemon) => {
    const file = join(daemon.dir, "web1.json");
    // The event line and the command's own output may come in either order.
    const steps: [string, RegExp, RegExp?][] = [
      [`define ${file}`, /Domain 'web1' defined from /, /\* domain web1 defined\n/],
      ["start web1", /Domain 'web1' started/, /\* domain web1 started\n/],
      ["list", /\d+\s+web1\s+running\s+2\s+256 MiB/],
      ["pause web1", /Domain 'web1' paused/, /\* domain web1 paused\n/],
      ["resume web1", /Domain 'web1' resumed/, /\* domain web1 resumed\n/],
      [
        "destroy web1",
        /Domain 'web1' destroyed/,
        /\* domain web1 destroyed: destroyed by request\n/,
      ],
      ["undefine web1", /Domain 'web1' has been undefined/, /\* domain web1 undefined\n/],
      ["info web1", /error: no domain 'web1'/],
      ["help start", /Usage: denovisor start NAME/],
      ["resume --help", /Usage: denovisor resume NAME/],
      ["bogus", /error: unknown command 'bogus'; type 'help'/],
    ];
    for (const [line, output, event] of steps) {
      await repl.send(line + "\r");
      await repl.expect(output);
      if (event) await repl.waitFor(event);
    }
    assert.equal(daemon.domains.size, 0);
  });
});

Deno.test("repl on a terminal: an event while typing is printed above the typed line", async () => {
  await withRepl(async (repl, daemon) => {
    await repl.send(`create ${join(daemon.dir, "web1.json")}\r`);
    await repl.expect(/Domain 'web1' created/);
    await repl.expect(/denovisor> /);
    await repl.send("list --ru");
    await repl.expect(/list --ru$/);
    daemon.crash("web1", "VMM killed by SIGKILL");
    await repl.expect(/\* domain web1 crashed: VMM killed by SIGKILL\n+denovisor> list --ru/);
    // deno-lint-ignore no-control-regex
    assert.match(repl.raw, /\r\x1b\[J\* domain web1 crashed: VMM killed by SIGKILL\r+\n/);
    await repl.send("nning\r");
    await repl.expect(/Id\s+Name\s+State[^\n]*\n-+\ndenovisor> /);
  });
});

Deno.test("repl: Ctrl-C stops logs --follow and gives the prompt back from a waiting shutdown", async () => {
  await withRepl(async (repl, daemon) => {
    await repl.send(`create ${join(daemon.dir, "web1.json")}\r`);
    await repl.expect(/Domain 'web1' created/);
    await repl.send("logs web1 --follow\r");
    await repl.expect(/boot line 2/);
    await Deno.writeTextFile(daemon.domains.get("web1")!.logFile, "a later line\n", {
      append: true,
    });
    await repl.expect(/a later line/);
    await repl.send("\x03");
    await repl.expect(/denovisor> $/);
    await repl.send("shutdown web1 --timeout 999\r");
    await repl.waitFor(/shutdown web1 --timeout 999\n/);
    // Ctrl-C once the request is at the daemon: the command is then surely waiting on it.
    const deadline = Date.now() + 30_000;
    const sent = () => daemon.requests.some((r) => r.line === "POST /v1/domains/web1/shutdown");
    while (!sent()) {
      assert.ok(Date.now() < deadline, "the shutdown request never reached the daemon");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await repl.send("\x03");
    await repl.expect(/Interrupted; the daemon may still complete the request\ndenovisor> $/);
    await repl.send("list --name\r");
    await repl.expect(/\nweb1\n/);
  });
});

Deno.test("repl: edit shows a refusal and edits again when asked", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // First run: an invalid vCPU count; second run: a valid one.
    const editor = join(dir, "editor.sh");
    await Deno.writeTextFile(
      editor,
      `#!/bin/sh
if [ -e "${dir}/once" ]; then
  sed -i 's/"vcpus": [0-9]*/"vcpus": 3/' "$1"
else
  touch "${dir}/once"; sed -i 's/"vcpus": [0-9]*/"vcpus": 0/' "$1"
fi
`,
    );
    await Deno.chmod(editor, 0o755);
    await withRepl(
      async (repl, daemon) => {
        await repl.send(`define ${join(daemon.dir, "web1.json")}\r`);
        await repl.expect(/Domain 'web1' defined/);
        await repl.send("edit web1\r");
        await repl.expect(/error: edited definition: vcpus[^\n]*\nEdit again\? \[y\/N\] $/);
        await repl.send("y\r");
        await repl.expect(/Domain 'web1' definition updated\n/);
        assert.equal(daemon.domains.get("web1")?.vcpus, 3);
      },
      undefined,
      { EDITOR: editor },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("repl keeps history across sessions", async () => {
  const dir = await Deno.makeTempDir();
  const history = join(dir, "history");
  try {
    await withRepl(async (repl) => {
      await repl.send("list --name\r");
      await repl.expect(/denovisor> $/);
    }, history);
    assert.match(await Deno.readTextFile(history), /^list --name\n/);
    await withRepl(async (repl) => {
      await repl.send("\x1b[A\x1b[A");
      await repl.expect(/denovisor> list --name/);
      await repl.send("\x15");
    }, history);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs one `list --name` in a terminal REPL started with `args` (no --history). */
async function oneCommand(daemon: FakeDaemon, args: string[], env: Record<string, string>) {
  const repl = new PtySession(["--socket", daemon.socket, ...args], env);
  try {
    await repl.expect(/Type 'help' for commands.*\ndenovisor> /);
    await repl.send("list --name\r");
    await repl.expect(/denovisor> $/);
    await repl.send("exit\r");
    assert.equal(await repl.close(), 0);
  } catch (error) {
    await repl.close();
    throw error;
  }
}

Deno.test("repl keeps history in <state-dir>/repl_history by default, else in ~", async () => {
  const daemon = await startFakeDaemon();
  const home = await Deno.makeTempDir();
  try {
    const stateDir = join(daemon.dir, "state");
    await Deno.mkdir(stateDir);
    await oneCommand(daemon, ["--state-dir", stateDir], { HOME: home });
    assert.equal(await Deno.readTextFile(join(stateDir, "repl_history")), "list --name\nexit\n");
    await assert.rejects(Deno.stat(join(home, ".denovisor_history")), Deno.errors.NotFound);
    // A state directory that cannot hold the file (here: not a directory at all).
    const notADir = join(daemon.dir, "web1.json");
    await Deno.writeTextFile(notADir, "{}");
    await oneCommand(daemon, ["--state-dir", notADir], { HOME: home });
    assert.equal(await Deno.readTextFile(join(home, ".denovisor_history")), "list --name\nexit\n");
  } finally {
    await daemon.close();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("repl with piped input runs each line and exits with the last failure", async () => {
  const daemon = await startFakeDaemon();
  try {
    await Deno.writeTextFile(
      join(daemon.dir, "a.json"),
      JSON.stringify({ name: "a", boot: { demo: true } }),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "repl", "--socket", daemon.socket],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(encoder.encode(
      `# a comment\ndefine ${join(daemon.dir, "a.json")}\nstart a\nstart ghost\nlist --name\n`,
    ));
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, CLIENT_EXIT.NOT_FOUND);
    assert.match(out, /Domain 'a' defined[\s\S]*Domain 'a' started[\s\S]*\na\n$/);
    assert.match(new TextDecoder().decode(stderr), /error: no domain 'ghost'/);
    assert.doesNotMatch(out, /denovisor> /);
  } finally {
    await daemon.close();
  }
});

kvmTest("repl on a terminal against a real daemon: lifecycle, console and a crash", async () => {
  const daemon = await TestDaemon.start();
  const file = join(daemon.dir, "web1.json");
  await Deno.writeTextFile(
    file,
    JSON.stringify({ name: "web1", boot: { kernel: guest("domain") }, memory: 32 }),
  );
  const repl = new PtySession(["--socket", daemon.socket, "--history", join(daemon.dir, "h")]);
  try {
    await repl.expect(/: 0 domains, 0 running\n.*\ndenovisor> /);
    const steps: [string, RegExp][] = [
      [`define ${file}`, /Domain 'web1' defined from /],
      ["start web1", /Domain 'web1' started/],
      ["pause web1", /Domain 'web1' paused/],
      ["resume web1", /Domain 'web1' resumed/],
      ["destroy web1", /Domain 'web1' destroyed/],
    ];
    for (const [line, expected] of steps) {
      await repl.send(line + "\r");
      await repl.expect(expected);
    }
    for (const kind of ["defined", "started: VMM pid \\d+", "paused", "resumed", "destroyed"]) {
      await repl.waitFor(new RegExp(`\\* domain web1 ${kind}`));
    }
    // Console from the REPL: Ctrl-] comes back to the prompt.
    await repl.send("start web1\r");
    await repl.expect(/Domain 'web1' started/);
    await daemon.waitForLog("web1", "tick 1");
    await repl.send("console web1\r");
    await repl.expect(/Connected to domain 'web1'; escape character is \^\]/);
    await repl.send("hi there\r");
    await repl.expect(/echo: hi there/);
    await repl.send("\x1d");
    await repl.expect(/denovisor> $/);
    // A VMM killed from outside: the event line appears without a command being run.
    const { pid } = await daemon.info("web1");
    Deno.kill(pid!, "SIGKILL");
    await repl.expect(/\* domain web1 crashed: [^\n]*SIGKILL/);
    await repl.send("list\r");
    await repl.expect(/-\s+web1\s+shutoff/);
    await repl.send("undefine web1\r");
    await repl.expect(/Domain 'web1' has been undefined/);
    await repl.waitFor(/\* domain web1 undefined/);
    await repl.send("exit\r");
    assert.equal(await repl.close(), 0);
  } catch (error) {
    await repl.close();
    throw error;
  } finally {
    await daemon.cleanup();
  }
}, 120_000);

Deno.test("repl on a terminal: Ctrl-R finds an earlier line, Alt-B edits it; img and check run inside", async () => {
  await withRepl(async (repl, daemon) => {
    const image = join(daemon.dir, "disk.qcow2");
    await repl.send(`img create -f qcow2 ${image} 1M\r`);
    await repl.expect(/Formatting '.*disk\.qcow2', fmt=qcow2 .*\ndenovisor> $/);
    await repl.send("list --name\r");
    await repl.expect(/denovisor> $/);
    // Ctrl-R "img" finds the img line; Ctrl-G gives up, Ctrl-U clears.
    await repl.send("\x12img");
    await repl.expect(/\(reverse-i-search\)'img': img create -f qcow2 /);
    await repl.send("\x07\x15");
    // A typo mended with word moves: Ctrl-A, Alt-F twice lands after "inf".
    await repl.send(`img inf --output=json ${image}\x01\x1bf\x1bfo\r`);
    await repl.expect(/"format": "qcow2"[\s\S]*\ndenovisor> $/);
    await repl.send("check --json\r");
    await repl.expect(/"checks": \[[\s\S]*\ndenovisor> $/);
    await repl.send("help img\r");
    await repl.expect(/Usage: denovisor img <subcommand>[\s\S]*\ndenovisor> $/);
  });
});

Deno.test("repl: events prints lines until Ctrl-C, then the prompt starts a line of its own", async () => {
  await withRepl(async (repl, daemon) => {
    await repl.send("events --domain web1\r");
    await repl.waitFor(/events --domain web1\n/);
    const deadline = Date.now() + 30_000;
    while (daemon.requests.filter((r) => r.line === "GET /v1/events").length < 2) {
      assert.ok(Date.now() < deadline, "events never subscribed");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    // The REPL is busy with events: the domain is defined through the API meanwhile.
    const client = new ApiClient(daemon.socket);
    await client.post("/v1/domains", { name: "web1", boot: { demo: true } });
    client.close();
    await repl.expect(/\d{4}-\d\d-\d\dT\S+ web1 defined\n/);
    await repl.send("\x03");
    await repl.expect(/denovisor> $/);
    assert.doesNotMatch(repl.text, /\^Cdenovisor> /);
    assert.doesNotMatch(repl.text, /Interrupted; the daemon/);
  });
});
