/**
 * The domain verbs against a fake daemon (tests/fake_daemon.ts): what they print, --json,
 * and the exit statuses scripts rely on (3 unreachable, 4 not found, 5 conflict, 6
 * invalid). A few run as `denovisor <verb>` child processes to cover main.ts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiClient } from "../manager/api_client.ts";
import { resolvePaths } from "../manager/paths.ts";
import { DOMAIN_VERBS, findDomainVerb } from "../cli/domain_commands.ts";
import { runVerbWith, SharedStdin } from "../cli/domain_verb.ts";
import { CLIENT_EXIT } from "../cli/output.ts";
import { denovisor, guest } from "./cli_support.ts";
import { TestDaemon } from "./daemon_support.ts";
import { kvmTest } from "./kvm_support.ts";
import { type FakeDaemon, startFakeDaemon } from "./fake_daemon.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs one verb in-process on `daemon` like the REPL does. */
async function run(daemon: FakeDaemon | string, line: string[]): Promise<Run> {
  const [name, ...args] = line;
  const verb = findDomainVerb(name);
  assert.ok(verb, `no verb ${name}`);
  const out: string[] = [];
  const err: string[] = [];
  const socket = typeof daemon === "string" ? daemon : daemon.socket;
  using client = new ApiClient(socket);
  const code = await runVerbWith(verb, args, {
    client,
    paths: resolvePaths({ socket, stateDir: "/nonexistent" }),
    io: { out: (text) => out.push(text), err: (text) => err.push(text) },
    stdin: new SharedStdin(() => new ReadableStream({ start: (c) => c.close() })).read,
    signal: new AbortController().signal,
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

async function withDaemon(body: (daemon: FakeDaemon) => Promise<void>): Promise<void> {
  const daemon = await startFakeDaemon();
  try {
    await body(daemon);
  } finally {
    await daemon.close();
  }
}

async function writeDefinition(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, text);
  return path;
}

const DEMO = (name: string) => JSON.stringify({ name, boot: { demo: true }, vcpus: 2 });

Deno.test("every domain verb and alias answers --help with its usage", async () => {
  for (const verb of DOMAIN_VERBS) {
    for (const name of [verb.name, ...verb.aliases ?? []]) {
      const result = await run("/nonexistent.sock", [name, "--help"]);
      assert.equal(result.code, 0);
      assert.match(result.out, new RegExp(`^Usage: denovisor ${verb.name}\\b`));
      assert.match(result.out, /\n\n/, `${name}: a description after the usage line`);
    }
  }
});

Deno.test("define, start, pause, resume, destroy, undefine print what happened", async () => {
  await withDaemon(async (daemon) => {
    const file = await writeDefinition(daemon.dir, "web1.json", DEMO("web1"));
    const steps: [string[], RegExp][] = [
      [["define", file], /^Domain 'web1' defined from .*web1\.json$/],
      [["start", "web1"], /^Domain 'web1' started$/],
      [["suspend", "web1"], /^Domain 'web1' paused$/],
      [["unpause", "web1"], /^Domain 'web1' resumed$/],
      [["reboot", "web1"], /^Domain 'web1' is being rebooted$/],
      [["shutdown", "web1", "--timeout", "5"], /^Domain 'web1' is shut off$/],
      [["start", "web1"], /^Domain 'web1' started$/],
      [["destroy", "web1"], /^Domain 'web1' destroyed$/],
      [["undefine", "web1"], /^Domain 'web1' has been undefined$/],
    ];
    for (const [line, expected] of steps) {
      const result = await run(daemon, line);
      assert.equal(result.code, 0, `${line.join(" ")}: ${result.err}`);
      assert.match(result.out, expected);
    }
    const shutdown = daemon.requests.find((r) => r.line === "POST /v1/domains/web1/shutdown");
    assert.deepEqual(shutdown?.body, { wait: true, timeoutSeconds: 5 });
    assert.equal(daemon.domains.size, 0);
  });
});

Deno.test("define sends absolute paths and leaves the uuid to the daemon", async () => {
  await withDaemon(async (daemon) => {
    const file = await writeDefinition(
      daemon.dir,
      "k.json",
      JSON.stringify({ name: "k", boot: { kernel: "vmlinux", initrd: "sub/initrd" } }),
    );
    const result = await run(daemon, ["define", file]);
    assert.equal(result.code, 0, result.err);
    const body = daemon.requests.find((r) => r.line === "POST /v1/domains")?.body as {
      boot: { kernel: string; initrd: string };
      uuid?: string;
    };
    assert.equal(body.boot.kernel, join(daemon.dir, "vmlinux"));
    assert.equal(body.boot.initrd, join(daemon.dir, "sub/initrd"));
    assert.equal(body.uuid, undefined);
  });
});

Deno.test("define of an existing name updates its definition (virsh define)", async () => {
  await withDaemon(async (daemon) => {
    const file = await writeDefinition(daemon.dir, "a.json", DEMO("a"));
    assert.equal((await run(daemon, ["define", file])).code, 0);
    const again = await run(daemon, ["define", file]);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /definition updated/);
    assert.ok(daemon.requests.some((r) => r.line === "PUT /v1/domains/a"));
  });
});

Deno.test("define reads an xl.cfg file and converts it client-side", async () => {
  await withDaemon(async (daemon) => {
    const file = await writeDefinition(
      daemon.dir,
      "web.cfg",
      `name = "xlweb"\nmemory = 512\nvcpus = 2\nkernel = "bzImage"\nextra = "console=ttyS0"\n`,
    );
    const result = await run(daemon, ["define", file]);
    assert.equal(result.code, 0, result.err);
    const body = daemon.requests.find((r) => r.line === "POST /v1/domains")?.body as {
      name: string;
      memory: number;
      boot: { kernel: string };
    };
    assert.equal(body.name, "xlweb");
    assert.equal(body.memory, 512);
    assert.equal(body.boot.kernel, join(daemon.dir, "bzImage"));
  });
});

Deno.test("create starts a transient domain that vanishes when destroyed", async () => {
  await withDaemon(async (daemon) => {
    const file = await writeDefinition(daemon.dir, "t.json", DEMO("t"));
    const created = await run(daemon, ["create", file]);
    assert.equal(created.code, 0, created.err);
    assert.match(created.out, /^Domain 't' created from /);
    assert.ok(daemon.requests.some((r) => r.line === "POST /v1/domains?start=1&transient=1"));
    const list = await run(daemon, ["list"]);
    assert.match(list.out, /^\s*\d+\s+t\s+running\s+.*\byes$/m);
    assert.equal((await run(daemon, ["destroy", "t"])).code, 0);
    assert.equal(daemon.domains.size, 0);
  });
});

Deno.test("a bad definition file exits 6 naming the file and the field", async () => {
  await withDaemon(async (daemon) => {
    const broken = await writeDefinition(daemon.dir, "broken.json", "{ name: ");
    const badJson = await run(daemon, ["define", broken]);
    assert.equal(badJson.code, CLIENT_EXIT.INVALID);
    assert.match(badJson.err, /broken\.json: not valid JSON/);
    const zero = await writeDefinition(
      daemon.dir,
      "zero.json",
      JSON.stringify({ name: "z", boot: { demo: true }, vcpus: 0 }),
    );
    const badField = await run(daemon, ["define", zero]);
    assert.equal(badField.code, CLIENT_EXIT.INVALID);
    assert.match(badField.err, /zero\.json: vcpus/);
    const missing = await run(daemon, ["define", join(daemon.dir, "nope.json")]);
    assert.equal(missing.code, CLIENT_EXIT.INVALID);
    assert.match(missing.err, /no such file/);
    assert.equal(daemon.requests.filter((r) => r.line.startsWith("POST")).length, 0);
  });
});

Deno.test("define refuses duplicate JSON keys, escapes NUL and BOM, and refuses huge files", async () => {
  await withDaemon(async (daemon) => {
    const twice = await writeDefinition(
      daemon.dir,
      "twice.json",
      `{"name": "t", "boot": {"demo": true}, "memory": 32, "memory": 4096}`,
    );
    const duplicate = await run(daemon, ["define", twice]);
    assert.equal(duplicate.code, CLIENT_EXIT.INVALID);
    assert.match(duplicate.err, /twice\.json: "memory" is given twice; give each key once/);
    const nul = await writeDefinition(daemon.dir, "nul.json", `{"name": \0}`);
    const withNul = await run(daemon, ["define", nul]);
    assert.equal(withNul.code, CLIENT_EXIT.INVALID);
    assert.match(withNul.err, /nul\.json: not valid JSON \(.*\\x00.*\)/);
    assert.ok(!withNul.err.includes("\0"), JSON.stringify(withNul.err));
    const bom = await writeDefinition(daemon.dir, "bom.json", `\ufeff\ufeff{"name": "t"}`);
    const withBom = await run(daemon, ["define", bom]);
    assert.equal(withBom.code, CLIENT_EXIT.INVALID);
    assert.match(withBom.err, /\\ufeff/);
    assert.ok(!withBom.err.includes("\ufeff"), JSON.stringify(withBom.err));
    // A 50 MB line: refused by its size, not read into gigabytes.
    const huge = join(daemon.dir, "huge.cfg");
    await Deno.writeTextFile(huge, `name = "t"\nextra = "${"a".repeat(50_000_000)}"\n`);
    const tooLarge = await run(daemon, ["define", huge]);
    assert.equal(tooLarge.code, CLIENT_EXIT.INVALID);
    assert.match(tooLarge.err, /huge\.cfg: larger than 1048576 bytes/);
    assert.equal(daemon.requests.filter((r) => r.line.startsWith("POST")).length, 0);
  });
});

Deno.test("exit statuses: 4 for an unknown domain, 5 for a wrong state, 2 for usage", async () => {
  await withDaemon(async (daemon) => {
    const notFound = await run(daemon, ["start", "ghost"]);
    assert.equal(notFound.code, CLIENT_EXIT.NOT_FOUND);
    assert.match(notFound.err, /no domain 'ghost'/);
    const file = await writeDefinition(daemon.dir, "a.json", DEMO("a"));
    await run(daemon, ["define", file]);
    const conflict = await run(daemon, ["resume", "a"]);
    assert.equal(conflict.code, CLIENT_EXIT.CONFLICT);
    assert.match(conflict.err, /is shutoff/);
    assert.equal((await run(daemon, ["start"])).code, CLIENT_EXIT.USAGE);
    assert.equal((await run(daemon, ["start", "a", "b"])).code, CLIENT_EXIT.USAGE);
    assert.equal((await run(daemon, ["list", "--bogus"])).code, CLIENT_EXIT.USAGE);
    assert.equal((await run(daemon, ["shutdown", "a", "--timeout", "x"])).code, CLIENT_EXIT.USAGE);
  });
});

Deno.test("list shows a virsh-like table, filters, names and JSON", async () => {
  await withDaemon(async (daemon) => {
    for (const name of ["web1", "db"]) {
      await run(daemon, ["define", await writeDefinition(daemon.dir, `${name}.json`, DEMO(name))]);
    }
    await run(daemon, ["start", "web1"]);
    const table = (await run(daemon, ["list"])).out.split("\n");
    assert.match(table[0], /^\s*Id\s+Name\s+State\s+vCPUs\s+Memory\s+Autostart\s+Transient$/);
    assert.match(table[1], /^-+$/);
    assert.match(table[2], /^\s+-\s+db\s+shutoff\s+2\s+256 MiB\s+no\s+no$/);
    // The domain id (the fake daemon counts from 1), not the VMM's pid (40000 and up).
    assert.match(table[3], /^\s*1\s+web1\s+running\s+2\s+256 MiB\s+no\s+no$/);
    assert.equal((await run(daemon, ["ls", "--inactive", "--name"])).out, "db");
    assert.equal((await run(daemon, ["list", "--running", "--name"])).out, "web1");
    const json = JSON.parse((await run(daemon, ["list", "--json"])).out);
    assert.deepEqual(json.map((d: { name: string }) => d.name), ["db", "web1"]);
    assert.equal(json[1].state, "running");
  });
});

Deno.test("info, stats, vcpu-count show fields; --json gives the API objects", async () => {
  await withDaemon(async (daemon) => {
    await run(daemon, ["define", await writeDefinition(daemon.dir, "w.json", DEMO("w"))]);
    await run(daemon, ["start", "w"]);
    const info = await run(daemon, ["dominfo", "w"]);
    assert.match(info.out, /^Name:\s+w$/m);
    assert.match(info.out, /^State:\s+running$/m);
    assert.match(info.out, /^Boot:\s+embedded demo guest$/m);
    assert.match(info.out, /^Id:\s+\d+$/m);
    assert.match(info.out, /^VMM pid:\s+4\d+$/m);
    assert.equal(JSON.parse((await run(daemon, ["info", "w", "--json"])).out).state, "running");
    assert.deepEqual(
      JSON.parse((await run(daemon, ["info", "w", "--definition"])).out).boot,
      { demo: true },
    );
    const stats = await run(daemon, ["domstats", "w"]);
    assert.match(stats.out, /^vCPU 1 time:\s+1\.50 s$/m);
    assert.match(stats.out, /VMM RSS:\s+50 MiB/);
    assert.match(stats.out, /vda\s+10\s+40 KiB\s+2\s+8 KiB\s+1\s+0\s+\/images\/a\.raw/);
    assert.equal(JSON.parse((await run(daemon, ["stats", "--json"])).out).length, 1);
    assert.equal((await run(daemon, ["vcpu-count", "w"])).out, "2");
  });
});

Deno.test("mem-set, vcpu-set and autostart send the right bodies", async () => {
  await withDaemon(async (daemon) => {
    await run(daemon, ["define", await writeDefinition(daemon.dir, "w.json", DEMO("w"))]);
    await run(daemon, ["start", "w"]);
    const mem = await run(daemon, ["setmem", "w", "512"]);
    assert.equal(mem.code, 0, mem.err);
    assert.match(mem.out, /memory target set to 512 MiB/);
    await run(daemon, ["mem-set", "w", "1.5G"]);
    const bodies = daemon.requests.filter((r) => r.line === "PUT /v1/domains/w/memory")
      .map((r) => r.body);
    assert.deepEqual(bodies, [{ targetBytes: 512 * 2 ** 20 }, { targetBytes: 1.5 * 2 ** 30 }]);
    const vcpus = await run(daemon, ["vcpu-set", "w", "4"]);
    assert.match(vcpus.out, /vCPU count set to 4\nNote: the new vCPU count applies/);
    assert.equal((await run(daemon, ["vcpu-set", "w", "0"])).code, CLIENT_EXIT.USAGE);
    await run(daemon, ["autostart", "w"]);
    await run(daemon, ["autostart", "w", "--disable"]);
    await run(daemon, ["autostart", "w", "on"]);
    await run(daemon, ["autostart", "w", "off"]);
    const autostart = daemon.requests.filter((r) => r.line === "PUT /v1/domains/w/autostart")
      .map((r) => (r.body as { enabled: boolean }).enabled);
    assert.deepEqual(autostart, [true, false, true, false]);
  });
});

Deno.test("logs prints the last lines with the guest's control characters defused", async () => {
  await withDaemon(async (daemon) => {
    await run(daemon, ["define", await writeDefinition(daemon.dir, "w.json", DEMO("w"))]);
    await run(daemon, ["start", "w"]);
    const all = await run(daemon, ["logs", "w"]);
    assert.equal(all.out, "boot line 1\nboot line 2?[31m red");
    assert.equal((await run(daemon, ["logs", "w", "--lines", "1"])).out, "boot line 2?[31m red");
    assert.equal((await run(daemon, ["logs", "w", "-n", "x"])).code, CLIENT_EXIT.USAGE);
  });
});

Deno.test("edit --file replaces the definition; a renamed one is refused with 6", async () => {
  await withDaemon(async (daemon) => {
    await run(daemon, ["define", await writeDefinition(daemon.dir, "w.json", DEMO("w"))]);
    const changed = await writeDefinition(
      daemon.dir,
      "w2.json",
      JSON.stringify({ name: "w", boot: { demo: true }, vcpus: 3 }),
    );
    const edited = await run(daemon, ["edit", "w", "--file", changed]);
    assert.equal(edited.code, 0, edited.err);
    assert.equal(daemon.domains.get("w")?.vcpus, 3);
    const renamed = await run(daemon, ["edit", "w", "--file", join(daemon.dir, "w.json")]);
    assert.equal(renamed.code, 0);
    const other = await writeDefinition(daemon.dir, "x.json", DEMO("x"));
    const refused = await run(daemon, ["edit", "w", "--file", other]);
    assert.equal(refused.code, CLIENT_EXIT.INVALID);
    assert.match(refused.err, /renaming is not supported/);
  });
});

Deno.test("edit runs $EDITOR on the JSON definition and saves what it wrote", async () => {
  await withDaemon(async (daemon) => {
    await run(daemon, ["define", await writeDefinition(daemon.dir, "w.json", DEMO("w"))]);
    const editor = await writeDefinition(
      daemon.dir,
      "editor.sh",
      `#!/bin/sh\nsed -i 's/"vcpus": 2/"vcpus": 6/' "$1"\n`,
    );
    await Deno.chmod(editor, 0o755);
    const previous = Deno.env.get("EDITOR");
    Deno.env.set("EDITOR", editor);
    Deno.env.delete("VISUAL");
    try {
      const edited = await run(daemon, ["edit", "w"]);
      assert.equal(edited.code, 0, edited.err);
      assert.match(edited.out, /Domain 'w' definition updated/);
      assert.equal(daemon.domains.get("w")?.vcpus, 6);
      Deno.env.set("EDITOR", "true");
      const unchanged = await run(daemon, ["edit", "w"]);
      assert.match(unchanged.out, /definition unchanged/);
    } finally {
      if (previous === undefined) Deno.env.delete("EDITOR");
      else Deno.env.set("EDITOR", previous);
    }
  });
});

Deno.test("console attaches, forwards input and reports read-only viewers", async () => {
  await withDaemon(async (daemon) => {
    await run(daemon, ["define", await writeDefinition(daemon.dir, "w.json", DEMO("w"))]);
    const notRunning = await run(daemon, ["console", "w"]);
    assert.equal(notRunning.code, CLIENT_EXIT.CONFLICT);
    assert.match(notRunning.err, /start it with 'denovisor start w'/);
  });
});

Deno.test("an unreachable daemon exits 3 and says how to start it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const result = await run(join(dir, "none.sock"), ["list"]);
    assert.equal(result.code, CLIENT_EXIT.UNREACHABLE);
    assert.match(result.err, /start it with 'denovisor daemon'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("denovisor <verb> as a command: help, --socket, env, exit statuses", async () => {
  await withDaemon(async (daemon) => {
    const help = await denovisor(["help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Domains:\n\s+list, ls\s+List domains/);
    assert.match(help.stdout, /3 daemon unreachable, 4 not found/);
    const startHelp = await denovisor(["start", "--help"]);
    assert.match(startHelp.stdout, /^Usage: denovisor start NAME/);
    await run(daemon, ["define", await writeDefinition(daemon.dir, "w.json", DEMO("w"))]);
    const list = await denovisor(["list", "--socket", daemon.socket]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /-\s+w\s+shutoff/);
    const byEnv = await denovisor(["info", "nope"], {
      env: { DENOVISOR_SOCKET: daemon.socket },
    });
    assert.equal(byEnv.code, CLIENT_EXIT.NOT_FOUND);
    assert.match(byEnv.stderr, /^denovisor: no domain 'nope'/);
    const down = await denovisor(["list", "--socket", join(daemon.dir, "gone.sock")]);
    assert.equal(down.code, CLIENT_EXIT.UNREACHABLE);
    const usage = await denovisor(["pause", "--socket", daemon.socket]);
    assert.equal(usage.code, CLIENT_EXIT.USAGE);
    assert.match(usage.stderr, /pause: missing the domain name/);
  });
});

/** A definition file for the ticking test guest (guests/domain.c). */
async function domainGuestFile(dir: string, name: string, balloon = false): Promise<string> {
  return await writeDefinition(
    dir,
    `${name}.json`,
    JSON.stringify({ name, boot: { kernel: guest("domain") }, memory: 32, balloon }),
  );
}

kvmTest("the verbs against a real daemon: a whole domain life", async () => {
  const daemon = await TestDaemon.start();
  try {
    const file = await domainGuestFile(daemon.dir, "web1", true);
    const cli = (line: string[]) => run(daemon.socket, line);
    assert.match((await cli(["define", file])).out, /^Domain 'web1' defined/);
    assert.match((await cli(["start", "web1"])).out, /^Domain 'web1' started$/);
    await daemon.waitForLog("web1", "tick 1");
    assert.match((await cli(["list"])).out, /\n\s*\d+\s+web1\s+running\s+1\s+32 MiB\s+no\s+no$/);
    assert.match((await cli(["logs", "web1", "--lines", "50"])).out, /domain guest up/);
    assert.match((await cli(["stats", "web1"])).out, /^vCPU 0 time:\s+\d/m);
    const balloon = await cli(["setmem", "web1", "24M"]);
    assert.equal(balloon.code, 0, balloon.err);
    assert.match(balloon.out, /memory target set to 24 MiB/);
    assert.equal((await cli(["start", "web1"])).code, CLIENT_EXIT.CONFLICT);
    assert.equal((await cli(["undefine", "web1"])).code, CLIENT_EXIT.CONFLICT);
    assert.match((await cli(["pause", "web1"])).out, /paused/);
    assert.match((await cli(["info", "web1"])).out, /^State:\s+paused$/m);
    assert.match((await cli(["resume", "web1"])).out, /resumed/);
    const shutdown = await cli(["shutdown", "web1", "--timeout", "20"]);
    assert.equal(shutdown.code, 0, shutdown.err);
    assert.match((await cli(["list", "--inactive", "--name"])).out, /^web1$/);
    assert.match((await cli(["info", "web1"])).out, /^Last end:\s+\S/m);
    // On a shut-off domain mem-set is --config (virsh's --current): its RAM from the next start.
    const memSet = await cli(["mem-set", "web1", "16M"]);
    assert.equal(memSet.code, 0, memSet.err);
    assert.equal(JSON.parse((await cli(["info", "web1", "--json"])).out).memoryBytes, 16 << 20);
    const live = await cli(["mem-set", "web1", "16M", "--live"]);
    assert.equal(live.code, CLIENT_EXIT.CONFLICT, "mem-set --live on a shut-off domain");
    assert.equal((await cli(["vcpu-set", "web1", "2"])).code, 0);
    assert.equal((await cli(["vcpu-count", "web1"])).out, "2");
    assert.equal((await cli(["autostart", "web1"])).code, 0);
    assert.equal(JSON.parse((await cli(["info", "web1", "--json"])).out).autostart, true);
    assert.match((await cli(["undefine", "web1"])).out, /has been undefined/);
    assert.equal((await cli(["info", "web1"])).code, CLIENT_EXIT.NOT_FOUND);
  } finally {
    await daemon.cleanup();
  }
}, 120_000);

kvmTest("a real daemon refuses a bad definition with 6 and the field's path", async () => {
  const daemon = await TestDaemon.start();
  try {
    const file = await writeDefinition(
      daemon.dir,
      "bad.json",
      JSON.stringify({ name: "bad", boot: { kernel: "/nonexistent/kernel" }, memory: 32 }),
    );
    const created = await run(daemon.socket, ["create", file]);
    assert.equal(created.code, CLIENT_EXIT.INVALID, created.out + created.err);
    assert.match(created.err, /kernel/);
    assert.equal((await run(daemon.socket, ["list", "--name"])).out, "");
  } finally {
    await daemon.cleanup();
  }
}, 60_000);

kvmTest("console on a real domain: replay, typing, echo, Ctrl-] detaches", async () => {
  const daemon = await TestDaemon.start();
  try {
    const file = await domainGuestFile(daemon.dir, "c1");
    assert.equal((await run(daemon.socket, ["create", file])).code, 0);
    await daemon.waitForLog("c1", "tick 1");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "console", "c1", "--socket", daemon.socket],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = new Response(child.stdout).text();
    const writer = child.stdin.getWriter();
    await daemon.waitForLog("c1", "tick 2");
    await writer.write(new TextEncoder().encode("hello console\n"));
    await daemon.waitForLog("c1", "echo: hello console");
    // A second viewer asking to type is told it only watches.
    const second = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "console", "c1", "--socket", daemon.socket],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const secondWriter = second.stdin.getWriter();
    const secondOutput = second.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("escape character")) seen += (await secondOutput.read()).value ?? "";
    assert.match(seen, /Connected to domain 'c1' \(read-only: another viewer is typing\)/);
    await secondWriter.write(new Uint8Array([0x1d]));
    assert.equal((await second.status).code, 0);
    await secondWriter.close().catch(() => {});
    await secondOutput.cancel();
    await new Response(second.stderr).text();
    await writer.write(new Uint8Array([0x1d]));
    const status = await child.status;
    await writer.close().catch(() => {});
    const text = await output;
    assert.equal(status.code, 0);
    assert.match(text, /^Connected to domain 'c1'; escape character is \^\]/);
    assert.match(text, /domain guest up[\s\S]*echo: hello console/);
    const viewer = await run(daemon.socket, ["destroy", "c1"]);
    assert.equal(viewer.code, 0);
  } finally {
    await daemon.cleanup();
  }
}, 90_000);

Deno.test("info shows the tap each NIC really has while the domain runs", async () => {
  await withDaemon(async (daemon) => {
    const definition = {
      name: "n",
      boot: { demo: true },
      nics: [{ mac: "52:54:00:aa:00:01" }, { mac: "52:54:00:aa:00:02", tap: "mytap" }],
    };
    await run(daemon, [
      "define",
      await writeDefinition(daemon.dir, "n.json", JSON.stringify(definition)),
    ]);
    const before = await run(daemon, ["info", "n"]);
    assert.match(before.out, /^NICs:\s+52:54:00:aa:00:01 on auto, 52:54:00:aa:00:02 on mytap$/m);
    await run(daemon, ["start", "n"]);
    const running = await run(daemon, ["info", "n"]);
    assert.match(
      running.out,
      /^NICs:\s+52:54:00:aa:00:01 on dnv-n-0, 52:54:00:aa:00:02 on mytap$/m,
    );
  });
});

Deno.test("define reports every mistake of a definition file, one line each, with status 6", async () => {
  await withDaemon(async (daemon) => {
    const bad = JSON.stringify({ name: "bad", boot: { demo: true }, vcpus: 0, memory: "lots" });
    const result = await run(daemon, [
      "define",
      await writeDefinition(daemon.dir, "bad.json", bad),
    ]);
    assert.equal(result.code, CLIENT_EXIT.INVALID);
    assert.match(
      result.err,
      /^error: \S+bad\.json: vcpus: 0 is not between 1 and 254\nmemory: cannot read size /,
    );
    assert.ok(!daemon.requests.some((r) => r.line.startsWith("POST")), "nothing was sent");
  });
});

Deno.test("logs says on stderr when it shows only the last lines", async () => {
  await withDaemon(async (daemon) => {
    await run(daemon, ["define", await writeDefinition(daemon.dir, "l.json", DEMO("l"))]);
    await run(daemon, ["start", "l"]);
    const logFile = daemon.domains.get("l")!.logFile;
    await Deno.writeTextFile(logFile, "line\n".repeat(150), { append: true });
    const tail = await run(daemon, ["logs", "l"]);
    assert.equal(tail.code, 0);
    assert.equal(tail.out.split("\n").length, 100);
    assert.equal(
      tail.err,
      "logs: the last 100 lines only; 'denovisor logs l --lines N' shows more (up to 10000)",
    );
    const all = await run(daemon, ["logs", "l", "--lines", "1000"]);
    assert.equal(all.out.split("\n").length, 152);
    assert.equal(all.err, "");
  });
});
