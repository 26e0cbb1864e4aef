import assert from "node:assert/strict";
import { ApiClientError } from "../manager/api_client.ts";
import { DefinitionError } from "../manager/domain/definition.ts";
import { SizeError } from "../common/units.ts";
import { CLIENT_EXIT, exitStatusForError, InvalidInputError } from "./output.ts";
import { parseSizeArgument, UsageError } from "./usage_error.ts";

Deno.test("exitStatusForError() maps every error by its code, as the README documents", () => {
  const cases: [unknown, number][] = [
    [new UsageError("--x: bad"), 2],
    [new ApiClientError("unreachable", "no daemon"), 3],
    [new ApiClientError("not_found", "no such domain", 404), 4],
    [new ApiClientError("conflict", "running", 409), 5],
    [new ApiClientError("invalid", "bad", 400), 6],
    [new ApiClientError("internal", "oops", 500), 1],
    [new ApiClientError("forbidden", "no", 403), 1],
    [new ApiClientError("timeout", "slow", 504), 1],
    [new InvalidInputError("web.json: not JSON"), 6],
    [new DefinitionError("memory", "too small"), 6],
    [new Error("anything else"), 1],
    ["a thrown string", 1],
  ];
  for (const [error, status] of cases) {
    assert.equal(exitStatusForError(error), status, String(error));
  }
  const unreachable = new ApiClientError("unreachable", "no daemon");
  assert.equal(unreachable.code, "unavailable");
  assert.equal(unreachable.unreachable, true);
  assert.equal(new ApiClientError("unavailable", "daemon busy", 503).unreachable, false);
  assert.deepEqual(
    [CLIENT_EXIT.OK, CLIENT_EXIT.FAILURE, CLIENT_EXIT.USAGE, CLIENT_EXIT.UNREACHABLE],
    [0, 1, 2, 3],
  );
  assert.deepEqual([CLIENT_EXIT.NOT_FOUND, CLIENT_EXIT.CONFLICT, CLIENT_EXIT.INVALID], [4, 5, 6]);
});

Deno.test("parseSizeArgument() turns a size that cannot be read into a usage error", () => {
  assert.equal(parseSizeArgument("2G", "--memory"), 2 * 1024 ** 3);
  assert.equal(parseSizeArgument("256", "--memory", "m"), 256 * 1024 ** 2);
  for (const bad of ["", "12X", "-1G"]) {
    assert.throws(
      () => parseSizeArgument(bad, "--memory"),
      (e: unknown) =>
        e instanceof UsageError && !(e instanceof SizeError) &&
        e.message.startsWith("--memory: ") && exitStatusForError(e) === 2,
    );
  }
});
