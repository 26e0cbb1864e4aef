/**
 * GET /metrics on a real daemon's API socket: Prometheus text that a Prometheus parser
 * reads, with the defined domains and an active pool (no VMM needed; the running
 * domain's counters are covered by manager/daemon/metrics_test.ts with a stand-in VMM).
 */

import assert from "node:assert/strict";
// A real parser of the exposition format (test-only dependency, pinned in deno.lock).
// deno-lint-ignore no-import-prefix
import parsePrometheusTextFormat from "npm:parse-prometheus-text-format@1.1.1";
import { TestDaemon } from "./daemon_support.ts";

interface ParsedFamily {
  name: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}

Deno.test("daemon: GET /metrics serves the domains and pools in Prometheus text format", async () => {
  const daemon = await TestDaemon.start();
  try {
    await daemon.client.request("POST", "/v1/domains", { name: "web1", boot: { demo: true } })
      .then((response) => response.body?.cancel());
    const poolDir = `${daemon.dir}/pool`;
    await daemon.client.request("POST", "/v1/pools", { name: "p1", type: "dir", path: poolDir })
      .then((response) => response.body?.cancel());
    for (const action of ["build", "start"]) {
      await daemon.client.request("POST", `/v1/pools/p1/${action}`)
        .then((response) => response.body?.cancel());
    }
    const response = await daemon.client.request("GET", "/metrics");
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const families = parsePrometheusTextFormat(text) as ParsedFamily[];
    const value = (name: string, labels: Record<string, string>) =>
      families.find((family) => family.name === name)?.metrics.find((metric) =>
        Object.entries(labels).every(([key, wanted]) => metric.labels?.[key] === wanted)
      )?.value;
    assert.equal(value("denovisor_domains", { state: "shutoff" }), "1");
    assert.equal(value("denovisor_domains", { state: "running" }), "0");
    assert.equal(value("denovisor_domain_state", { domain: "web1", state: "shutoff" }), "1");
    assert.equal(value("denovisor_domain_persistent", { domain: "web1" }), "1");
    assert.equal(value("denovisor_pool_active", { pool: "p1" }), "1");
    assert.ok(Number(value("denovisor_pool_capacity_bytes", { pool: "p1" })) > 0);
    assert.equal(value("denovisor_pool_volumes", { pool: "p1" }), "0");
    const wrongMethod = await fetchRaw(daemon.socket, "POST", "/metrics");
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.allow, "GET");
  } finally {
    await daemon.cleanup();
  }
});

async function fetchRaw(socket: string, method: string, path: string) {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const response = await fetch(`http://denovisor${path}`, { method, client });
    await response.body?.cancel();
    return { status: response.status, allow: response.headers.get("allow") };
  } finally {
    client.close();
  }
}

Deno.test("daemon --metrics-listen serves /metrics on TCP to the allowed networks; bad values are usage errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-metrics-tcp-" });
  // A free port: bound and let go (nothing else on this host is expected to grab it).
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const main = new URL("../main.ts", import.meta.url).pathname;
  const daemon = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      main,
      "daemon",
      "--state-dir",
      dir,
      "--socket",
      `${dir}/api.sock`,
      "--metrics-listen",
      `127.0.0.1:${port}`,
      "--metrics-allow",
      "127.0.0.0/8",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const deadline = Date.now() + 60_000;
    let response: Response | undefined;
    while (response === undefined) {
      response = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
      if (response === undefined) {
        assert.ok(Date.now() < deadline, "the metrics address never answered");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    assert.equal(response.status, 200);
    const families = parsePrometheusTextFormat(await response.text()) as ParsedFamily[];
    assert.ok(families.some((family) => family.name === "denovisor_domains"));
    daemon.kill("SIGTERM");
    const [status, stderr] = await Promise.all([
      daemon.status,
      new Response(daemon.stderr).text(),
    ]);
    assert.equal(status.code, 0, stderr);
    assert.match(stderr, new RegExp(`metrics on http://127\\.0\\.0\\.1:${port}/metrics`));
  } finally {
    try {
      daemon.kill("SIGKILL");
    } catch {
      // Exited.
    }
    await daemon.status;
    await Deno.remove(dir, { recursive: true });
  }
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "daemon", "--metrics-listen", "localhost:9177"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(bad.code, 2);
  assert.match(
    new TextDecoder().decode(bad.stderr),
    /--metrics-listen: 'localhost:9177' is not ADDR:PORT/,
  );
});
