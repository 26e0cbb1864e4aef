import assert from "node:assert/strict";
import { ApiError } from "../common/http/mod.ts";
import { DenovisorError } from "../common/errors.ts";
import { parseSaveRequest } from "./control_api.ts";

Deno.test("parseSaveRequest() takes the save contract's fields", () => {
  assert.deepEqual(parseSaveRequest({ stateFile: "/s/vm.state" }), { stateFile: "/s/vm.state" });
  assert.deepEqual(
    parseSaveRequest({ stateFile: "/s/a", memoryFile: "/s/a.ram", resume: true }),
    { stateFile: "/s/a", memoryFile: "/s/a.ram", resume: true },
  );
  assert.deepEqual(parseSaveRequest({ stateFile: "/s/a", inline: true }), {
    stateFile: "/s/a",
    inline: true,
  });
});

Deno.test("parseSaveRequest() refuses a bad body with a coded invalid error naming the field", () => {
  const refused = (body: unknown, message: RegExp) =>
    assert.throws(
      () => parseSaveRequest(body),
      (e) => e instanceof DenovisorError && e.code === "invalid" && message.test(e.message),
    );
  refused([], /The body must be an object/);
  refused({ stateFile: "/s/a", keep: true }, /keep: unknown field/);
  refused({}, /stateFile: must be the absolute path/);
  refused({ stateFile: 7 }, /stateFile/);
  refused({ stateFile: "rel/a" }, /'rel\/a' is not an absolute path/);
  refused({ stateFile: "/s/a", memoryFile: 1 }, /memoryFile: must be an absolute path/);
  refused({ stateFile: "/s/a", memoryFile: "/elsewhere/a.mem" }, /state file's directory/);
  refused({ stateFile: "/s/a", inline: true, memoryFile: "/s/a.mem" }, /inline save/);
  refused({ stateFile: "/s/a", resume: "yes" }, /resume: must be true or false/);
  refused({ stateFile: "/s/a", inline: 1 }, /inline: must be true or false/);
  assert.ok(new ApiError("invalid", "x") instanceof DenovisorError);
});
