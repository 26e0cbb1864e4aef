import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiError } from "../../common/http/mod.ts";
import type { DomainDefinition } from "../api_types.ts";
import { DomainHooks } from "./hooks.ts";

const DEFINITION: DomainDefinition = { name: "web1", boot: { demo: true }, vcpus: 2 };

/** A hooks directory with `script` as its `domain` hook (mode `mode`). */
async function withHook(
  script: string | undefined,
  body: (dir: string, hooks: DomainHooks, logged: string[]) => Promise<void>,
  options: { mode?: number; timeoutMs?: number } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-hooks-" });
  try {
    if (script !== undefined) {
      const path = join(dir, "domain");
      await Deno.writeTextFile(path, `#!/bin/sh\n${script}\n`);
      await Deno.chmod(path, options.mode ?? 0o755);
    }
    const logged: string[] = [];
    await body(dir, new DomainHooks(dir, (line) => logged.push(line), options.timeoutMs), logged);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("DomainHooks: no hook file, nothing runs and nothing is refused", async () => {
  await withHook(undefined, async (_dir, hooks) => {
    assert.equal(await hooks.run("prepare", DEFINITION), undefined);
    await hooks.check("prepare", DEFINITION);
  });
});

Deno.test("DomainHooks: the hook gets NAME OPERATION SUB-OPERATION - and the definition on stdin", async () => {
  await withHook(
    'echo "$@" >> "$(dirname "$0")/calls"; cat > "$(dirname "$0")/stdin-$2"',
    async (dir, hooks, logged) => {
      await hooks.check("prepare", DEFINITION);
      await hooks.check("start", DEFINITION);
      hooks.notify("started", DEFINITION);
      hooks.notify("stopped", DEFINITION);
      await hooks.notify("release", DEFINITION);
      assert.deepEqual((await Deno.readTextFile(join(dir, "calls"))).trim().split("\n"), [
        "web1 prepare begin -",
        "web1 start begin -",
        "web1 started begin -",
        "web1 stopped end -",
        "web1 release end -",
      ]);
      assert.deepEqual(JSON.parse(await Deno.readTextFile(join(dir, "stdin-prepare"))), DEFINITION);
      assert.deepEqual(logged, []);
    },
  );
});

Deno.test("DomainHooks: a failing prepare hook refuses the start with its first stderr line (409)", async () => {
  await withHook(
    'echo; echo "no bridge br9 on this host" >&2; echo more >&2; exit 3',
    async (_dir, hooks) => {
      const error = await hooks.check("prepare", DEFINITION).then(() => undefined, (e) => e);
      assert.ok(error instanceof ApiError);
      assert.equal(error.code, "conflict");
      assert.match(
        error.message,
        /^The prepare hook \S+\/domain refused to start domain 'web1': no bridge br9 on this host \(exit status 3\)$/,
      );
    },
  );
});

Deno.test("DomainHooks: a failing started or stopped hook is only logged", async () => {
  await withHook('[ "$2" = started ] && exit 7; exit 0', async (_dir, hooks, logged) => {
    await hooks.notify("started", DEFINITION);
    await hooks.notify("stopped", DEFINITION);
    assert.deepEqual(logged, ["the started hook of 'web1' failed: exit status 7"]);
  });
});

Deno.test("DomainHooks: a hook still running after the timeout is killed and refuses the start", async () => {
  // The background sleep keeps stderr open after the hook is killed: not waited for.
  await withHook("sleep 30 & sleep 30", async (_dir, hooks) => {
    const started = Date.now();
    const result = await hooks.run("prepare", DEFINITION);
    assert.deepEqual(result, { ok: false, reason: "still running after 0.3 s; killed" });
    assert.ok(Date.now() - started < 10_000, "it did not wait for the hook's children");
  }, { timeoutMs: 300 });
});

Deno.test("DomainHooks: a hook others may write, or that cannot be executed, is not run", async () => {
  await withHook('touch "$(dirname "$0")/ran"', async (dir, hooks) => {
    const error = await hooks.check("prepare", DEFINITION).then(() => undefined, (e) => e);
    assert.match(String(error?.message), /refused to start domain 'web1': others may write to it/);
    assert.equal(await Deno.stat(join(dir, "ran")).then(() => true, () => false), false);
  }, { mode: 0o777 });
  await withHook("exit 0", async (_dir, hooks) => {
    assert.deepEqual(await hooks.run("prepare", DEFINITION), {
      ok: false,
      reason: "it is not executable; chmod u+x it",
    });
  }, { mode: 0o644 });
});

Deno.test("DomainHooks: a domain's calls run in order (a restart's prepare waits for the release)", async () => {
  await withHook(
    '[ "$2" = release ] && sleep 0.5; echo "$2" >> "$(dirname "$0")/order"',
    async (dir, hooks) => {
      hooks.notify("stopped", DEFINITION);
      hooks.notify("release", DEFINITION);
      await hooks.check("prepare", DEFINITION);
      assert.deepEqual((await Deno.readTextFile(join(dir, "order"))).trim().split("\n"), [
        "stopped",
        "release",
        "prepare",
      ]);
    },
  );
});
