import assert from "node:assert/strict";
import {
  cidrContains,
  MetricsOptionError,
  parseCidr,
  parseListenAddress,
  startMetricsListener,
} from "./metrics_listener.ts";

Deno.test("parseListenAddress() takes ADDR:PORT and [v6]:PORT, and refuses the rest", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:9177"), { hostname: "127.0.0.1", port: 9177 });
  assert.deepEqual(parseListenAddress("[::]:9177"), { hostname: "::", port: 9177 });
  for (const bad of ["9177", "localhost:9177", "1.2.3.4:70000", "::1:9177", "1.2.3.999:1"]) {
    assert.throws(() => parseListenAddress(bad), MetricsOptionError, bad);
  }
});

Deno.test("parseCidr() and cidrContains() judge IPv4, IPv6 and IPv4-mapped peers", () => {
  const net10 = parseCidr("10.0.0.0/8");
  assert.ok(cidrContains(net10, "10.200.3.4"));
  assert.ok(!cidrContains(net10, "11.0.0.1"));
  assert.ok(cidrContains(net10, "::ffff:10.1.2.3"), "an IPv4 peer on a dual-stack socket");
  assert.ok(!cidrContains(net10, "fd00::1"));
  const host = parseCidr("192.0.2.7");
  assert.ok(cidrContains(host, "192.0.2.7"));
  assert.ok(!cidrContains(host, "192.0.2.8"));
  const odd = parseCidr("192.0.2.0/25");
  assert.ok(cidrContains(odd, "192.0.2.127"));
  assert.ok(!cidrContains(odd, "192.0.2.128"));
  const v6 = parseCidr("fd00:1234::/32");
  assert.ok(cidrContains(v6, "fd00:1234:ffff::9"));
  assert.ok(!cidrContains(v6, "fd00:1235::1"));
  assert.ok(cidrContains(parseCidr("::1/128"), "::1"));
  assert.ok(cidrContains(parseCidr("0.0.0.0/0"), "203.0.113.9"));
  for (const bad of ["10.0.0.0/33", "10.0.0/8", "fd00::/129", "x", "10.0.0.0/8/1", "1::2::3"]) {
    assert.throws(() => parseCidr(bad), MetricsOptionError, bad);
  }
});

Deno.test("startMetricsListener() serves /metrics to allowed peers only", async () => {
  const sources = { domains: { entries: () => [] } };
  const open = startMetricsListener({ listen: "127.0.0.1:0" }, sources, () => {});
  const closed = startMetricsListener(
    { listen: "127.0.0.1:0", allow: ["10.0.0.0/8"] },
    sources,
    () => {},
  );
  try {
    const ok = await fetch(`http://127.0.0.1:${open.port}/metrics`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(await ok.text(), /^denovisor_domains\{state="running"\} 0$/m);
    const other = await fetch(`http://127.0.0.1:${open.port}/v1/domains`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
    const post = await fetch(`http://127.0.0.1:${open.port}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    const refused = await fetch(`http://127.0.0.1:${closed.port}/metrics`);
    assert.equal(refused.status, 403);
    assert.equal(await refused.text(), "127.0.0.1 is not in --metrics-allow\n");
  } finally {
    await open.close();
    await closed.close();
  }
});
