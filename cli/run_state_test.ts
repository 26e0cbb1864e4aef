import assert from "node:assert/strict";
import { parseRunStateOptions } from "./run_state.ts";
import { UsageError } from "./usage_error.ts";

Deno.test("parseRunStateOptions() resolves the files and keeps --paused and --force", () => {
  assert.deepEqual(parseRunStateOptions({}, []), {});
  assert.deepEqual(
    parseRunStateOptions({ restore: "/s/vm.state", paused: true }, ["--restore", "/s/vm.state"]),
    { restore: { stateFile: "/s/vm.state", paused: true, force: false } },
  );
  const relative = parseRunStateOptions({ "save-on-signal": "vm.state" }, []);
  assert.equal(relative.saveOnSignal, `${Deno.cwd()}/vm.state`);
});

Deno.test("parseRunStateOptions() refuses --paused without --restore and machine flags with it", () => {
  const refused = (
    values: Parameters<typeof parseRunStateOptions>[0],
    args: string[],
    message: RegExp,
  ) =>
    assert.throws(
      () => parseRunStateOptions(values, args),
      (e) => e instanceof UsageError && message.test(e.message),
    );
  refused({ paused: true }, ["--paused"], /--paused: add --restore FILE/);
  refused({ force: true }, ["--force"], /--force: add --restore FILE/);
  refused({ restore: "/s" }, ["--restore", "/s", "--memory", "1G"], /--memory: a restored machine/);
  refused({ restore: "/s" }, ["--restore=/s", "--disk=/a.raw"], /--disk: a restored machine/);
});
