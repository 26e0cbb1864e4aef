import assert from "node:assert/strict";
import {
  DenovisorError,
  ERROR_CODES,
  errorCode,
  EXIT_OK,
  EXIT_STATUS,
  HTTP_STATUS,
  isErrorCode,
} from "./errors.ts";

Deno.test("every code has one HTTP status and one exit status, as the README documents", () => {
  assert.deepEqual(Object.keys(HTTP_STATUS).sort(), [...ERROR_CODES].sort());
  assert.deepEqual(Object.keys(EXIT_STATUS).sort(), [...ERROR_CODES].sort());
  assert.equal(EXIT_OK, 0);
  // 0 ok, 1 failure, 2 usage, 3 daemon unreachable, 4 not found, 5 conflict, 6 invalid.
  assert.deepEqual(
    ERROR_CODES.map((code) => [code, EXIT_STATUS[code]]),
    [
      ["invalid", 6],
      ["usage", 2],
      ["not_found", 4],
      ["conflict", 5],
      ["busy", 5],
      ["unavailable", 3],
      ["too_large", 6],
      ["forbidden", 1],
      ["timeout", 1],
      ["internal", 1],
    ],
  );
  assert.equal(HTTP_STATUS.invalid, 400);
  assert.equal(HTTP_STATUS.not_found, 404);
  assert.equal(HTTP_STATUS.conflict, 409);
  assert.equal(HTTP_STATUS.busy, 409);
  assert.equal(HTTP_STATUS.internal, 500);
});

Deno.test("DenovisorError carries its code and its subclass's name", () => {
  class ThingError extends DenovisorError {}
  const error = new ThingError("busy", "the thing is in use", { cause: 1 });
  assert.equal(error.code, "busy");
  assert.equal(error.name, "ThingError");
  assert.equal(String(error), "ThingError: the thing is in use");
  assert.equal(error.cause, 1);
  assert.equal(errorCode(error), "busy");
  assert.equal(errorCode(new Error("plain")), "internal");
  assert.equal(errorCode("thrown text"), "internal");
});

Deno.test("isErrorCode() accepts exactly the codes", () => {
  for (const code of ERROR_CODES) assert.equal(isErrorCode(code), true);
  for (const other of ["unreachable", "Invalid", "", 400, undefined]) {
    assert.equal(isErrorCode(other), false, String(other));
  }
});
