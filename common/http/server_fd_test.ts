import assert from "node:assert/strict";

const SERVER = new URL("./server.ts", import.meta.url).href;

Deno.test("serveUnix() at the descriptor limit waits for descriptors instead of dying", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-http-fd-test-" });
  const path = `${dir}/api.sock`;
  // A server with few descriptors and no connection cap of its own, so that accept fails.
  const script = `
    import { serveUnix } from ${JSON.stringify(SERVER)};
    serveUnix({ path: ${
    JSON.stringify(path)
  }, maxConnections: 100000, log: (l) => console.error(l) },
      () => new Response("ok"));
    // As the daemon does: the signal machinery is set up before descriptors run out.
    Deno.addSignalListener("SIGTERM", () => {
      console.log("stopping");
      Deno.exit(0);
    });
    console.log("listening");`;
  const logFile = `${dir}/server.log`;
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `exec prlimit --nofile=64:64 "$0" eval "$1" >"$2" 2>&1`,
      Deno.execPath(),
      script,
      logFile,
    ],
    stdin: "null",
  }).spawn();
  const held: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 300 && !await exists(path); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // More connections than the server has descriptors: the kernel queues the rest.
    for (let i = 0; i < 120; i++) held.push(await Deno.connect({ transport: "unix", path }));
    await new Promise((r) => setTimeout(r, 500));
    for (const conn of held.splice(0)) conn.close();
    // The server lives and answers once descriptors are back.
    let answer = "";
    for (let i = 0; i < 100 && !answer.startsWith("HTTP/1.1 200"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await ask(path).catch(() => "");
    }
    try {
      child.kill("SIGTERM");
    } catch {
      // Died on its own: reported below.
    }
    const status = await child.status;
    const stderr = await Deno.readTextFile(logFile);
    assert.match(stderr, /stopping/, `the server died on its own:\n${stderr}`);
    assert.equal(status.code, 0, stderr);
    assert.match(answer, /^HTTP\/1.1 200 OK/, stderr);
    assert.match(stderr, /cannot accept a connection \(.*(Too many open files|os error 24)/);
    assert.doesNotMatch(stderr, /Uncaught/);
  } finally {
    for (const conn of held) conn.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

async function ask(path: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    let text = "";
    const buffer = new Uint8Array(4096);
    for (;;) {
      const count = await conn.read(buffer);
      if (count === null) return text;
      text += new TextDecoder().decode(buffer.subarray(0, count));
    }
  } finally {
    conn.close();
  }
}

function exists(path: string): Promise<boolean> {
  return Deno.stat(path).then(() => true, () => false);
}
