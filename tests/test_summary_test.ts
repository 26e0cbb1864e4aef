/**
 * scripts/test_summary.sh, the end of scripts/test.sh and so of .ci/run: the last line is
 * "N passed, N failed" alone, ignored tests are named, and DENOVISOR_FAIL_ON_SKIP=1 makes a
 * run with skipped tests fail.
 */
import assert from "node:assert/strict";

const SCRIPT = new URL("../scripts/test_summary.sh", import.meta.url).pathname;

const SKIPPING_RUN = `running 3 tests from ./tests/a_test.ts
boots a guest [SKIPPED: no KVM] ... ignored (0ms)
parses a flag ... ok (3ms)
outer ...
  inner step ... ignored (1ms)
outer ... ok (12ms)

ok | 2 passed | 0 failed | 1 ignored (1 step) (40ms)
`;

async function summarize(log: string, status: number, env: Record<string, string> = {}) {
  const path = await Deno.makeTempFile({ prefix: "test_summary_" });
  try {
    await Deno.writeTextFile(path, log);
    const out = await new Deno.Command("bash", {
      args: [SCRIPT, path, String(status)],
      env: { DENOVISOR_FAIL_ON_SKIP: "", ...env },
    }).output();
    const decoder = new TextDecoder();
    const stdout = decoder.decode(out.stdout);
    return {
      code: out.code,
      stdout,
      stderr: decoder.decode(out.stderr),
      lines: stdout.trimEnd().split("\n"),
    };
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("test_summary.sh ends with 'N passed, N failed' alone and names the ignored tests", async () => {
  const r = await summarize(SKIPPING_RUN, 0);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.lines.at(-1), "2 passed, 0 failed");
  assert.equal(r.lines.at(-2), "2 skipped");
  assert.ok(r.lines.includes("  boots a guest [SKIPPED: no KVM]"), r.stdout);
  assert.ok(r.lines.includes("  inner step"), r.stdout);
  assert.ok(!r.stdout.includes("parses a flag"), r.stdout);
});

Deno.test("test_summary.sh with DENOVISOR_FAIL_ON_SKIP=1 fails a run that skipped tests", async () => {
  // A host with a KVM device node: a "no KVM" skip means a broken host, not a missing one.
  const r = await summarize(SKIPPING_RUN, 0, {
    DENOVISOR_FAIL_ON_SKIP: "1",
    DENOVISOR_KVM_DEVICE: "/",
  });
  assert.equal(r.code, 1);
  assert.equal(r.lines.at(-1), "2 passed, 2 failed");
  assert.match(r.stderr, /2 tests were skipped and DENOVISOR_FAIL_ON_SKIP=1/);
  assert.ok(r.lines.includes("  boots a guest [SKIPPED: no KVM]"), r.stdout);
});

Deno.test("test_summary.sh with DENOVISOR_FAIL_ON_SKIP=1 passes a run that skipped nothing", async () => {
  const r = await summarize("ok | 5 passed | 0 failed (1s)\n", 0, { DENOVISOR_FAIL_ON_SKIP: "1" });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.lines.slice(-2), ["0 skipped", "5 passed, 0 failed"]);
});

Deno.test("test_summary.sh keeps deno test's failure status and fails a run without a summary", async () => {
  const failed = await summarize("x ... FAILED (2ms)\n\nFAILED | 4 passed | 1 failed (1s)\n", 1);
  assert.equal(failed.code, 1);
  assert.equal(failed.lines.at(-1), "4 passed, 1 failed");
  const crashed = await summarize("error: Module not found\n", 0);
  assert.equal(crashed.code, 1);
  assert.equal(crashed.lines.at(-1), "0 passed, 1 failed");
  assert.match(crashed.stderr, /printed no summary line/);
});

Deno.test("test_summary.sh tolerates only the skips scripts/allowed_skips lists, when they apply", async () => {
  // No KVM device node: the "no KVM" skip is tolerated, the unmarked step still fails.
  const noKvm = await summarize(SKIPPING_RUN, 0, {
    DENOVISOR_FAIL_ON_SKIP: "1",
    DENOVISOR_KVM_DEVICE: "/nonexistent/kvm",
  });
  assert.equal(noKvm.code, 1);
  assert.equal(noKvm.lines.at(-1), "2 passed, 1 failed");
  assert.match(noKvm.stderr, /1 skipped tests are tolerated/);
  assert.match(noKvm.stderr, /1 tests were skipped[^\n]*\n {2}inner step/);
  const onlyKvm = await summarize(
    "a [SKIPPED: no KVM] ... ignored (0ms)\nok | 3 passed | 0 failed | 1 ignored (1s)\n",
    0,
    { DENOVISOR_FAIL_ON_SKIP: "1", DENOVISOR_KVM_DEVICE: "/nonexistent/kvm" },
  );
  assert.equal(onlyKvm.code, 0, onlyKvm.stderr);
  assert.equal(onlyKvm.lines.at(-1), "3 passed, 0 failed");
});
