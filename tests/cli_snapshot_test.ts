/**
 * The save, restore, snapshot and clone verbs from the CLI and the REPL against a real
 * daemon (no VMM needed: a shut-off domain on a pool volume): what they print, the exit
 * statuses (2 usage, 4 not found, 5 conflict, 6 invalid), the `snapshot WORD` group and
 * virsh's snapshot-* names, and Tab completion of snapshot names.
 */

import assert from "node:assert/strict";
import { ApiClient } from "../manager/api_client.ts";
import { resolvePaths } from "../manager/paths.ts";
import { findDomainVerb } from "../cli/domain_commands.ts";
import { SharedStdin, type VerbContext } from "../cli/domain_verb.ts";
import { runVerbWith } from "../cli/domain_verb.ts";
import { completionSpecs, runReplCommand } from "../cli/repl/commands.ts";
import { completeLine } from "../cli/repl/completion.ts";
import { denovisor } from "./cli_support.ts";
import { TestDaemon } from "./daemon_support.ts";

interface Run {
  code: number;
  out: string;
  err: string;
}

function context(client: ApiClient, socket: string, out: string[], err: string[]): VerbContext {
  return {
    client,
    paths: resolvePaths({ socket, stateDir: "/nonexistent" }),
    io: { out: (text) => out.push(text), err: (text) => err.push(text) },
    stdin: new SharedStdin(() => new ReadableStream({ start: (c) => c.close() })).read,
    signal: new AbortController().signal,
  };
}

/** Runs one line as the REPL does (verbs, aliases and the snapshot group). */
async function repl(daemon: TestDaemon, line: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  using client = new ApiClient(daemon.socket);
  const code = await runReplCommand(line, context(client, daemon.socket, out, err));
  assert.notEqual(code, undefined, `no command ${line[0]}`);
  return { code: code!, out: out.join("\n"), err: err.join("\n") };
}

Deno.test("snapshot verbs print what they did and exit 0, 2, 4, 5 or 6", async () => {
  const daemon = await TestDaemon.start();
  try {
    const api = daemon.client;
    await api.post("/v1/pools", { name: "default", type: "dir", path: `${daemon.dir}/pool` });
    await api.post("/v1/pools/default/build");
    await api.post("/v1/pools/default/start");
    await api.post("/v1/pools/default/volumes", { name: "root", size: "1M", format: "raw" });
    await api.post("/v1/domains", {
      name: "web",
      boot: { demo: true },
      disks: [{ volume: "root" }],
    });

    let r = await repl(daemon, ["snapshot", "create", "web", "s1", "--description", "first"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "Snapshot 's1' of domain 'web' taken (disks only)");
    r = await repl(daemon, ["snapshot-create-as", "web", "s1"]);
    assert.equal(r.code, 5, "a name clash is a conflict");
    assert.match(r.err, /already has a snapshot 's1'/);
    r = await repl(daemon, ["snapshot", "create", "web", "bad/name"]);
    assert.equal(r.code, 6, r.err);
    r = await repl(daemon, ["snapshot-list", "web"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Name\s+Created\s+State\s+Memory\s+Parent\s+Description/);
    assert.match(r.out, /s1 \*\s+\S+ \S+\s+shutoff\s+no\s+-\s+first/);
    r = await repl(daemon, ["snapshot", "info", "web", "s1", "--json"]);
    assert.equal(JSON.parse(r.out).disks[0].volume, "root");
    r = await repl(daemon, ["snapshot", "info", "web", "nope"]);
    assert.equal(r.code, 4, r.err);
    r = await repl(daemon, ["snapshot-revert", "web", "s1"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Domain 'web' reverted to snapshot 's1' \(shutoff\)/);
    assert.match(r.out, /Note: a disk-only snapshot: the domain is left shut off/);
    r = await repl(daemon, ["snapshot", "bogus", "web"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown subcommand 'bogus'; use create, list, info, revert, delete/);
    r = await repl(daemon, ["snapshot", "revert", "web"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /missing the snapshot name/);
    r = await repl(daemon, ["snapshot"]);
    assert.equal(r.code, 2);
    assert.match(r.out, /Usage: denovisor snapshot SUBCOMMAND/);

    // Tab completes the subcommands and the domain's snapshot names.
    using client = new ApiClient(daemon.socket);
    const source = {
      domains: () => Promise.resolve(["web"]),
      pools: () => Promise.resolve([]),
      volumes: () => Promise.resolve([]),
      snapshots: async (domain: string) =>
        (await client.get<{ name: string }[]>(`/v1/domains/${domain}/snapshots`)).map((s) =>
          s.name
        ),
    };
    const complete = async (line: string) => {
      const { start, candidates } = await completeLine(
        line,
        line.length,
        completionSpecs(),
        source,
      );
      return candidates.filter((c) => c.startsWith(line.slice(start))).sort();
    };
    assert.deepEqual(await complete("snapshot r"), ["revert"]);
    assert.deepEqual(await complete("snapshot revert w"), ["web"]);
    assert.deepEqual(await complete("snapshot revert web "), ["s1"]);
    assert.deepEqual(await complete("snapshot-delete web s"), ["s1"]);
    assert.deepEqual(await complete("snapshot create web --d"), ["--description", "--disk-only"]);
    assert.deepEqual(await complete("clo"), ["clone"]);
    const res = await complete("res");
    assert.ok(res.includes("restore") && res.includes("resume"), res.join(","));

    r = await repl(daemon, ["snapshot", "delete", "web", "s1"]);
    assert.equal(r.code, 0, r.err);
    r = await repl(daemon, ["clone", "web", "c", "--count", "x"]);
    assert.equal(r.code, 2, r.err);
    r = await repl(daemon, ["clone", "web", "c", "--count", "2"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      "Domain 'c-1' cloned from 'web' (shutoff)\nDomain 'c-2' cloned from 'web' (shutoff)",
    );
    r = await repl(daemon, ["save", "web", "web.state"]);
    assert.equal(r.code, 5, "a shut-off domain has no state to save");
    assert.match(r.err, /is shutoff/);
    r = await repl(daemon, ["restore", "missing.state"]);
    assert.equal(r.code, 6, r.err);
    assert.match(r.err, new RegExp(`${Deno.cwd()}/missing.state`), "sent as an absolute path");
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("denovisor snapshot and save print their usage; missing arguments exit 2", async () => {
  const help = await denovisor(["snapshot", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /create\s+Snapshot a domain/);
  const sub = await denovisor(["help", "snapshot-revert"]);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /Usage: denovisor snapshot-revert DOMAIN NAME/);
  const missing = await denovisor(["save", "web"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /save: missing the state file; usage: denovisor save NAME FILE/);
  assert.ok(findDomainVerb("snapshot-create-as"));
  assert.ok(findDomainVerb("restore"));
  const verb = findDomainVerb("clone")!;
  assert.equal(
    await runVerbWith(verb, ["--help"], {
      ...context(new ApiClient("/nonexistent"), "/nonexistent", [], []),
    }),
    0,
  );
});
