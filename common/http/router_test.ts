import assert from "node:assert/strict";
import { jsonResponse, Router } from "./router.ts";
import { firstDuplicateKey, MAX_BODY_BYTES, readJsonBody } from "./json_body.ts";
import { ApiError } from "./api_error.ts";
import { DenovisorError } from "../errors.ts";

class BusyError extends DenovisorError {
  constructor() {
    super("busy", "the volume is being copied; retry when it is done");
  }
}

const router = new Router()
  .add("GET", "/v1/things/:name", ({ params }) => jsonResponse({ name: params.name }))
  .add("DELETE", "/v1/things/:name", () => new Response(null, { status: 204 }))
  .add("POST", "/v1/things", async ({ request }) => jsonResponse(await readJsonBody(request), 201))
  .add("POST", "/v1/busy", () => {
    throw new BusyError();
  });

async function call(method: string, path: string, body?: string, type = "application/json") {
  const response = await router.handle(
    new Request(`http://x${path}`, {
      method,
      body,
      headers: body === undefined ? {} : { "content-type": type },
    }),
  );
  return { response, body: await response.json().catch(() => null) };
}

Deno.test("Router answers a wrong method with 405 and Allow", async () => {
  const { response, body } = await call("PUT", "/v1/things/a", "{}");
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "DELETE, GET");
  assert.match(body.error.message, /PUT is not allowed on \/v1\/things\/a; use DELETE, GET/);
  assert.equal((await call("GET", "/v1/nothing")).response.status, 404);
});

Deno.test("Router maps any coded error through the one status table", async () => {
  const { response, body } = await call("POST", "/v1/busy");
  assert.equal(response.status, 409);
  assert.deepEqual(body.error, {
    code: "busy",
    message: "the volume is being copied; retry when it is done",
  });
  assert.equal(new ApiError("too_large", "x").status, 413);
});

Deno.test("readJsonBody() refuses text/plain and form bodies with 415", async () => {
  for (const type of ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded"]) {
    const { response, body } = await call("POST", "/v1/things", '{"a":1}', type);
    assert.equal(response.status, 415, type);
    assert.match(body.error.message, /send the body as application\/json/);
  }
  assert.equal((await call("POST", "/v1/things", '{"a":1}')).response.status, 201);
});

Deno.test("readJsonBody() refuses a body above the limit with 413", async () => {
  const big = JSON.stringify({ a: "x".repeat(MAX_BODY_BYTES) });
  const { response, body } = await call("POST", "/v1/things", big);
  assert.equal(response.status, 413);
  assert.equal(body.error.code, "too_large");
});

Deno.test("readJsonBody() refuses duplicate keys and names where", async () => {
  const { response, body } = await call(
    "POST",
    "/v1/things",
    '{"name":"a","disks":[{"path":"/x","path":"/etc/shadow"}]}',
  );
  assert.equal(response.status, 400);
  assert.match(body.error.message, /^disks\[0\]\.path: the key appears twice/);
  assert.equal(
    firstDuplicateKey('{"a":{"b":1},"c":{"b":2},"s":"{\\"a\\":1,\\"a\\":2}"}'),
    undefined,
  );
  assert.equal(firstDuplicateKey('{"a":1,"\\u0061":2}'), "a");
  assert.equal(firstDuplicateKey('[{"k":1},{"k":1,"k":2}]'), "[1].k");
});
