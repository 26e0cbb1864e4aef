import assert from "node:assert/strict";
import { serveUnix, type UnixServerOptions } from "./server.ts";
import { jsonResponse, Router } from "./router.ts";
import { readJsonBody } from "./json_body.ts";

const encoder = new TextEncoder();

async function withServer(
  options: Partial<UnixServerOptions>,
  work: (path: string, client: Deno.HttpClient) => Promise<void>,
  router = testRouter(),
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-http-test-" });
  const path = `${dir}/api.sock`;
  const server = serveUnix({ path, log: () => {}, ...options }, (r) => router.handle(r));
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path } });
  try {
    await work(path, client);
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function testRouter(): Router {
  return new Router()
    .add("GET", "/hello", () => jsonResponse({ hello: "world" }))
    .add("POST", "/echo", async ({ request }) => jsonResponse(await readJsonBody(request)))
    .add("GET", "/stream", () => {
      let n = 0;
      return new Response(
        new ReadableStream({
          async pull(controller) {
            await new Promise((r) => setTimeout(r, 20));
            if (n === 3) return controller.close();
            controller.enqueue(encoder.encode(`line ${n++}\n`));
          },
        }),
      );
    });
}

/** Sends raw bytes; resolves with what came back before the server closed (or "" on timeout). */
async function raw(
  path: string,
  bytes: string,
  waitMs = 5000,
): Promise<{ text: string; closed: boolean }> {
  const conn = await Deno.connect({ transport: "unix", path });
  // Written beside the reading: the server may answer (and close) before taking it all.
  const writing = (async () => {
    const data = encoder.encode(bytes);
    for (let offset = 0; offset < data.byteLength;) {
      offset += await conn.write(data.subarray(offset));
    }
  })().catch(() => {});
  let text = "";
  const buffer = new Uint8Array(65536);
  const deadline = setTimeout(() => conn.close(), waitMs);
  let closed = false;
  try {
    for (;;) {
      const count = await conn.read(buffer);
      if (count === null) {
        closed = true;
        break;
      }
      text += new TextDecoder().decode(buffer.subarray(0, count));
    }
  } catch {
    // Our own close at the deadline.
  } finally {
    clearTimeout(deadline);
    try {
      conn.close();
    } catch {
      // Closed.
    }
  }
  await writing;
  return { text, closed };
}

Deno.test("serveUnix() answers fetch, JSON bodies, streams and keeps connections alive", async () => {
  await withServer({}, async (_path, client) => {
    for (let i = 0; i < 3; i++) {
      const response = await fetch("http://x/hello", { client });
      assert.deepEqual(await response.json(), { hello: "world" });
    }
    const echo = await fetch("http://x/echo", {
      method: "POST",
      client,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: [1, 2, { b: "c" }] }),
    });
    assert.deepEqual(await echo.json(), { a: [1, 2, { b: "c" }] });
    const stream = await fetch("http://x/stream", { client });
    assert.equal(await stream.text(), "line 0\nline 1\nline 2\n");
  });
});

Deno.test("serveUnix() closes a connection whose head stays partial past the header timeout", async () => {
  await withServer({ headerTimeoutMs: 300 }, async (path) => {
    const started = Date.now();
    const result = await raw(path, "GET /hello HTTP/1.1\r\nHost: x\r\n", 5000);
    assert.equal(result.closed, true, "the server closed the connection");
    assert.ok(Date.now() - started < 3000, `closed after ${Date.now() - started} ms`);
  });
});

Deno.test("serveUnix() closes a kept-alive connection idle past the idle timeout", async () => {
  await withServer({ idleTimeoutMs: 300 }, async (path) => {
    const started = Date.now();
    const result = await raw(path, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 5000);
    assert.match(result.text, /^HTTP\/1.1 200 OK\r\n/);
    assert.match(result.text, /"hello": "world"/);
    assert.equal(result.closed, true);
    assert.ok(Date.now() - started < 3000);
  });
});

Deno.test("serveUnix() turns away connections beyond its cap with 503 and serves again after", async () => {
  await withServer({ maxConnections: 4 }, async (path, client) => {
    const held = await Promise.all(
      Array.from({ length: 4 }, () => Deno.connect({ transport: "unix", path })),
    );
    // Let the server accept the four before the fifth comes.
    await new Promise((r) => setTimeout(r, 200));
    const turned = await raw(path, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(turned.text, /^HTTP\/1.1 503 /);
    for (const conn of held) conn.close();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = await fetch("http://x/hello", { client }).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      }, () => 0);
    }
    assert.equal(status, 200);
  });
});

Deno.test("serveUnix() serves 200 parallel clients, each waiting on a slow handler", async () => {
  // Raw sockets: 200 Deno.HttpClients take 30 s to connect, whatever the server.
  const router = new Router().add("GET", "/slow", async () => {
    await new Promise((r) => setTimeout(r, 500));
    return jsonResponse({ ok: true });
  });
  await withServer({}, async (path) => {
    const started = Date.now();
    const answers = await Promise.all(
      Array.from(
        { length: 200 },
        () => raw(path, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 30_000),
      ),
    );
    assert.deepEqual(
      new Set(answers.map((a) => a.text.split("\r\n")[0])),
      new Set(["HTTP/1.1 200 OK"]),
    );
    // Served side by side: 200 one after another would take 100 s.
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  }, router);
});

Deno.test("serveUnix() refuses bodies above the limit with 413 without reading them", async () => {
  await withServer({}, async (path) => {
    const declared = await raw(
      path,
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
        `Content-Length: ${700 * 1024 * 1024}\r\n\r\n{`,
    );
    assert.match(declared.text, /^HTTP\/1.1 413 /);
    // Chunked: no length announced, counted while read.
    const piece = "1".repeat(64 * 1024);
    let body = "";
    for (let i = 0; i < 20; i++) body += `${piece.length.toString(16)}\r\n${piece}\r\n`;
    const chunked = await raw(
      path,
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
        `Transfer-Encoding: chunked\r\n\r\n${body}0\r\n\r\n`,
    );
    assert.match(chunked.text, /^HTTP\/1.1 413 /);
  });
});

Deno.test("serveUnix() refuses malformed heads and ambiguous framing with 400", async () => {
  await withServer({}, async (path) => {
    assert.match((await raw(path, "NOT HTTP\r\n\r\n")).text, /^HTTP\/1.1 400 /);
    const smuggle = await raw(
      path,
      "POST /echo HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
    );
    assert.match(smuggle.text, /^HTTP\/1.1 400 /);
    assert.match((await raw(path, "TRACE /hello HTTP/1.1\r\n\r\n")).text, /^HTTP\/1.1 400 /);
    const huge = await raw(path, `GET /hello HTTP/1.1\r\nX: ${"a".repeat(20000)}\r\n\r\n`);
    assert.match(huge.text, /^HTTP\/1.1 431 /);
  });
});

Deno.test("serveUnix() ends a stream when its client goes away", async () => {
  let cancelled!: () => void;
  const wasCancelled = new Promise<void>((r) => cancelled = r);
  const router = new Router().add("GET", "/events", () =>
    new Response(
      new ReadableStream({
        start(controller) {
          controller.enqueue(encoder.encode("first\n"));
        },
        cancel() {
          cancelled();
        },
      }),
    ));
  await withServer({}, async (path) => {
    const conn = await Deno.connect({ transport: "unix", path });
    await conn.write(encoder.encode("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    const buffer = new Uint8Array(1024);
    assert.ok((await conn.read(buffer)) !== null);
    conn.close();
    await wasCancelled;
  }, router);
});

Deno.test("serveUnix() streams to an HTTP/1.0 client without chunked encoding, then closes", async () => {
  await withServer({}, async (path) => {
    const answer = await raw(path, "GET /stream HTTP/1.0\r\n\r\n");
    assert.equal(answer.closed, true);
    assert.doesNotMatch(answer.text, /transfer-encoding/i);
    assert.match(answer.text, /\r\n\r\nline 0\nline 1\nline 2\n$/);
  });
});

Deno.test("serveUnix() lets a client that is still sending a refused body read the 413", async () => {
  await withServer({}, async (_path, client) => {
    const body = new Uint8Array(8 * 1024 * 1024).fill(0x20);
    for (let i = 0; i < 5; i++) {
      const response = await fetch("http://x/echo", {
        method: "POST",
        client,
        headers: { "content-type": "application/json" },
        body,
      });
      assert.equal(response.status, 413);
      await response.body?.cancel();
    }
  });
});
