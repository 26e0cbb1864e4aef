/**
 * One schema for the API (docs/api-schema.md): the OpenAPI document a daemon serves and
 * `denovisor daemon --openapi` prints carries exactly the schemas of manager/api_schema.ts,
 * and the daemon refuses request bodies with that schema's checks, every problem at once.
 */

import assert from "node:assert/strict";
import { TestDaemon } from "./daemon_support.ts";
import { denovisor } from "./cli_support.ts";
import { REQUEST_SCHEMAS } from "../manager/api_schema.ts";
import { ANSWER_SCHEMAS } from "../manager/api_answer_schema.ts";
import { NAME, toJsonSchema } from "../common/schema.ts";
import { OPENAPI_DOCUMENT } from "../manager/daemon/openapi.ts";

type Json = Record<string, unknown>;

function componentSchemas(document: Json): Record<string, Json> {
  return (document.components as Json).schemas as Record<string, Json>;
}

Deno.test("denovisor daemon --openapi prints the document whose request schemas are api_schema.ts's", async () => {
  const result = await denovisor(["daemon", "--openapi"]);
  assert.equal(result.code, 0, result.stderr);
  const printed = JSON.parse(result.stdout) as Json;
  assert.deepEqual(printed, JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
  const schemas = componentSchemas(printed);
  const generated: Json = {};
  for (const schema of [...REQUEST_SCHEMAS, ...ANSWER_SCHEMAS]) {
    toJsonSchema(schema, generated, false);
  }
  assert.ok(Object.keys(generated).length >= REQUEST_SCHEMAS.length + ANSWER_SCHEMAS.length);
  for (
    const name of ["DomainDefinition", "DomainInfo", "DomainSummary", "DomainEvent", "HostInfo"]
  ) {
    assert.ok(name in generated, `${name} is not generated`);
  }
  for (const [name, schema] of Object.entries(generated)) {
    assert.deepEqual(schemas[name], JSON.parse(JSON.stringify(schema)), name);
  }
  // Each request body the paths name is one of them (no hand-written twin is left).
  const bodies = JSON.stringify(printed.paths).match(
    /"requestBody":\{[^}]*\{[^}]*\{"\$ref":"[^"]+"/g,
  );
  const named = new Set(REQUEST_SCHEMAS.map((schema) => schema[NAME]));
  for (const body of bodies ?? []) {
    const name = body.slice(body.lastIndexOf("/") + 1, -1);
    assert.ok(named.has(name), `${name} is not from manager/api_schema.ts or pool_schema.ts`);
  }
  assert.ok((bodies ?? []).length >= 10, `only ${bodies?.length} request bodies`);
});

Deno.test("daemon: every request body is checked by its schema, all problems in one 400", async () => {
  const daemon = await TestDaemon.start();
  try {
    const client = Deno.createHttpClient({ proxy: { transport: "unix", path: daemon.socket } });
    const send = async (method: string, path: string, body: unknown) => {
      const response = await fetch(`http://denovisor${path}`, {
        method,
        client,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json() as { error?: { message: string } };
      return { status: response.status, message: answer.error?.message };
    };
    try {
      await daemon.client.post("/v1/domains", { name: "web", boot: { demo: true } });
      assert.deepEqual(await send("POST", "/v1/domains/web/shutdown", { wait: 1, after: 2 }), {
        status: 400,
        message: "after: unknown field; the known fields here are timeoutSeconds, wait\n" +
          "wait: expected true or false, got 1",
      });
      assert.deepEqual(await send("PUT", "/v1/domains/web/memory", { targetBytes: -5 }), {
        status: 400,
        message: "targetBytes: -5 is below the minimum of 1",
      });
      assert.deepEqual(await send("PUT", "/v1/domains/web/vcpus", { count: 300 }), {
        status: 400,
        message: "count: 300 is not between 1 and 254",
      });
      assert.deepEqual(await send("POST", "/v1/domains/web/save", { keep: "yes" }), {
        status: 400,
        message: "file: missing; give the absolute path of the state file to write\n" +
          'keep: expected true or false, got "yes"',
      });
      assert.deepEqual(await send("POST", "/v1/domains/web/clone", { name: "c", count: 0 }), {
        status: 400,
        message: "count: 0 is not a whole number from 1 to 100",
      });
      assert.deepEqual(await send("POST", "/v1/domains/web/migrate", { bandwidth: "fast" }), {
        status: 400,
        message: "dest: missing; the destination daemon's HOST:PORT is required\n" +
          'bandwidth: expected a whole number, got "fast"',
      });
      assert.deepEqual(await send("POST", "/v1/domains/web/snapshots", ["s1"]), {
        status: 400,
        message: "The request body must be a JSON object with name, diskOnly, description",
      });
      assert.deepEqual(await send("PUT", "/v1/pools/default/autostart", {}), {
        status: 400,
        message: "enabled: missing",
      });
      // A definition: structural problems (the schema) and semantic ones (code) together.
      const bad = await send("PUT", "/v1/domains/web", {
        name: "web",
        boot: { demo: true },
        vcpus: "2",
        nics: [{ mac: "01:00:5e:00:00:01" }, { mac: "zz" }],
      });
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.message?.split("\n"), [
        'vcpus: expected a whole number, got "2"',
        "nics[0].mac: 01:00:5e:00:00:01 is a multicast address; use a unicast one (even first " +
        "byte), e.g. 52:54:00:12:34:56",
        'nics[1].mac: "zz" is not a MAC address; write six hex pairs like 52:54:00:12:34:56',
      ]);
    } finally {
      client.close();
    }
  } finally {
    await daemon.cleanup();
  }
});
