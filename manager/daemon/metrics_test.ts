import assert from "node:assert/strict";
import { join } from "node:path";
// A real parser of the format, beside the strict line checks below (test-only dependency).
// deno-lint-ignore no-import-prefix
import parsePrometheusTextFormat from "npm:parse-prometheus-text-format@1.1.1";
import type { DomainStats } from "../api_types.ts";
import type { DomainEntry } from "./domain_entry.ts";
import { escapeLabel, formatMetrics, type MetricsSnapshot } from "./metrics.ts";
import { gatherMetrics, processCpuSeconds } from "./metrics_route.ts";
import { VmmControl } from "./vmm_control.ts";
import type { VmmRun } from "./vmm_run.ts";

interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}

/**
 * The exposition format's rules that a lenient parser lets through, checked line by line:
 * names and label names by the spec's regular expressions, HELP and TYPE once per family
 * and before its samples, a family's samples together, no series twice, values that
 * parse as floats, a final newline.
 */
function checkStrictly(text: string): void {
  assert.ok(text.endsWith("\n"), "the text ends with a newline");
  const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  const sample =
    /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/;
  const typed = new Map<string, string>();
  const helped = new Set<string>();
  const finished = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment;
      assert.match(name, metricName);
      if (current !== name && current !== undefined) finished.add(current);
      assert.ok(!finished.has(name), `${name}: its lines are not together`);
      current = name;
      if (kind === "TYPE") {
        assert.ok(!typed.has(name), `${name}: TYPE twice`);
        assert.ok(["counter", "gauge", "untyped"].includes(rest), `${name}: type ${rest}`);
        typed.set(name, rest);
      } else {
        assert.ok(!helped.has(name), `${name}: HELP twice`);
        helped.add(name);
      }
      continue;
    }
    const match = sample.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    const [, name, labels = "", value] = match;
    assert.equal(name, current, `${name}: a sample outside its family`);
    assert.ok(typed.has(name) && helped.has(name), `${name}: sample before HELP and TYPE`);
    if (typed.get(name) === "counter") assert.match(name, /_total$/);
    assert.ok(
      /^(NaN|[+-]Inf|[+-]?\d+(\.\d+)?([eE][+-]?\d+)?)$/.test(value),
      `${line}: value ${value}`,
    );
    assert.ok(!series.has(name + labels), `${name}${labels} twice`);
    series.add(name + labels);
  }
}

const STATS: DomainStats = {
  name: "web1",
  state: "running",
  // vCPU 2's time is not known (run off-thread): it gets no series, not a guess.
  vcpus: [{ index: 0, cpuTimeNs: 1_500_000_000 }, { index: 1, cpuTimeNs: 250_000_000 }, {
    index: 2,
  }],
  memory: {
    guestBytes: 512 << 20,
    availableBytes: 384 << 20,
    balloonBytes: 128 << 20,
    rssBytes: 99e6,
  },
  disks: [{
    name: "vda",
    path: "/p/web1.qcow2",
    readRequests: 10,
    writeRequests: 20,
    readBytes: 4096,
    writeBytes: 8192,
    flushes: 3,
    errors: 0,
    throttled: 1,
  }],
  nics: [{
    name: "net0",
    tap: "dnv-web1-0",
    mac: "52:54:00:12:34:56",
    rxFrames: 5,
    txFrames: 6,
    rxBytes: 700,
    txBytes: 800,
    rxDropped: 2,
  }],
};

function snapshot(): MetricsSnapshot {
  return {
    version: "1.2.3",
    hostname: 'host"with\\odd\nname',
    scrapeErrors: 1,
    domains: [
      {
        name: "web1",
        state: "running",
        persistent: true,
        vcpus: 2,
        memoryBytes: 512 << 20,
        stats: STATS,
        vmmCpuSeconds: 2.5,
      },
      { name: "db1", state: "shutoff", persistent: false, vcpus: 1, memoryBytes: 256 << 20 },
    ],
    pools: [
      {
        name: "default",
        type: "dir",
        path: "/p",
        autostart: true,
        state: "active",
        capacityBytes: 1e12,
        allocationBytes: 4e11,
        availableBytes: 6e11,
        volumes: 3,
      },
      { name: "off", type: "dir", path: "/q", autostart: false, state: "inactive", volumes: 0 },
    ],
  };
}

/** `family`'s samples as "label=value,...=> value" strings, for compact assertions. */
function samples(families: ParsedFamily[], name: string): string[] {
  const family = families.find((each) => each.name === name);
  assert.ok(family, `no family ${name}`);
  return family.metrics.map((metric) =>
    Object.entries(metric.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(",") +
    ` => ${metric.value}`
  );
}

Deno.test("formatMetrics() writes text a Prometheus parser reads, with every figure the issue asks for", () => {
  const text = formatMetrics(snapshot());
  checkStrictly(text);
  const families = parsePrometheusTextFormat(text) as ParsedFamily[];
  assert.deepEqual(samples(families, "denovisor_domains"), [
    "state=shutoff => 1",
    "state=starting => 0",
    "state=running => 1",
    "state=paused => 0",
    "state=shutting-down => 0",
    "state=crashed => 0",
  ]);
  assert.deepEqual(samples(families, "denovisor_info"), [
    'version=1.2.3,hostname=host"with\\odd\nname => 1',
  ]);
  assert.ok(samples(families, "denovisor_domain_state").includes("domain=web1,state=running => 1"));
  assert.ok(samples(families, "denovisor_domain_state").includes("domain=db1,state=running => 0"));
  assert.deepEqual(samples(families, "denovisor_domain_persistent"), [
    "domain=web1 => 1",
    "domain=db1 => 0",
  ]);
  assert.deepEqual(samples(families, "denovisor_domain_vcpu_seconds_total"), [
    "domain=web1,vcpu=0 => 1.5",
    "domain=web1,vcpu=1 => 0.25",
  ]);
  assert.deepEqual(samples(families, "denovisor_domain_vmm_cpu_seconds_total"), [
    "domain=web1 => 2.5",
  ]);
  assert.deepEqual(samples(families, "denovisor_domain_balloon_bytes"), [
    `domain=web1 => ${128 << 20}`,
  ]);
  assert.deepEqual(samples(families, "denovisor_domain_vmm_rss_bytes"), [
    "domain=web1 => 99000000",
  ]);
  assert.deepEqual(samples(families, "denovisor_domain_disk_write_bytes_total"), [
    "domain=web1,disk=vda => 8192",
  ]);
  assert.deepEqual(samples(families, "denovisor_domain_disk_throttled_total"), [
    "domain=web1,disk=vda => 1",
  ]);
  assert.deepEqual(samples(families, "denovisor_domain_nic_receive_dropped_total"), [
    "domain=web1,nic=net0,tap=dnv-web1-0 => 2",
  ]);
  assert.deepEqual(samples(families, "denovisor_pool_active"), [
    "pool=default => 1",
    "pool=off => 0",
  ]);
  assert.deepEqual(samples(families, "denovisor_pool_capacity_bytes"), [
    "pool=default => 1000000000000",
  ]);
  assert.deepEqual(samples(families, "denovisor_scrape_errors"), [" => 1"]);
  const types = Object.fromEntries(families.map((family) => [family.name, family.type]));
  assert.equal(types.denovisor_domain_vcpu_seconds_total, "COUNTER");
  assert.equal(types.denovisor_domain_balloon_bytes, "GAUGE");
});

Deno.test("formatMetrics() leaves out families without samples and stays valid with no domain", () => {
  const text = formatMetrics({
    version: "1",
    hostname: "h",
    scrapeErrors: 0,
    domains: [],
    pools: [],
  });
  checkStrictly(text);
  assert.doesNotMatch(text, /denovisor_domain_vcpu_seconds_total/);
  assert.match(text, /^denovisor_domains\{state="running"\} 0$/m);
});

Deno.test("escapeLabel() escapes backslash, quote and newline (and a hostile domain name stays one sample)", () => {
  assert.equal(escapeLabel('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  const hostile = 'x"} 1\nevil_metric 666 #';
  const text = formatMetrics({
    version: "1",
    hostname: "h",
    scrapeErrors: 0,
    domains: [{ name: hostile, state: "shutoff", persistent: true, vcpus: 1, memoryBytes: 1 }],
    pools: [],
  });
  checkStrictly(text);
  assert.doesNotMatch(text, /^evil_metric/m);
  const families = parsePrometheusTextFormat(text) as ParsedFamily[];
  assert.deepEqual(samples(families, "denovisor_domain_vcpus"), [`domain=${hostile} => 1`]);
});

/** A stand-in VMM control socket that answers GET /vm/stats. */
async function withFakeVmm(
  body: (socket: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-metrics-" });
  const socket = join(dir, "vmm.sock");
  const server = Deno.serve(
    { transport: "unix", path: socket, onListen: () => {} },
    (request) =>
      new URL(request.url).pathname === "/vm/stats"
        ? Response.json(STATS)
        : new Response("no", { status: 404 }),
  );
  try {
    await body(socket, dir);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function entry(name: string, state: DomainEntry["state"], socket?: string): DomainEntry {
  const run = socket === undefined ? undefined : {
    pid: Deno.pid,
    record: { pidStartTime: -1 },
    control: new VmmControl(name, socket),
  } as unknown as VmmRun;
  return {
    definition: { name, vcpus: 2, memory: 64, boot: { demo: true } },
    persistent: true,
    state,
    run,
    restarts: [],
    logFile: "/dev/null",
  };
}

Deno.test("gatherMetrics() asks each running VMM for its counters and counts the ones that do not answer", async () => {
  await withFakeVmm(async (socket, dir) => {
    const snapshot = await gatherMetrics({
      domains: {
        entries: () => [
          entry("web1", "running", socket),
          entry("gone", "running", join(dir, "nothing.sock")),
          entry("off", "shutoff"),
        ],
      },
      pools: () => {
        throw new Error("a pool file being edited");
      },
    });
    assert.equal(snapshot.scrapeErrors, 1);
    assert.deepEqual(snapshot.pools, []);
    const [web1, gone, off] = snapshot.domains;
    assert.deepEqual(web1.stats, STATS);
    assert.equal(web1.memoryBytes, 64 << 20);
    assert.ok((web1.vmmCpuSeconds ?? -1) >= 0, "the VMM process's CPU time");
    assert.equal(gone.stats, undefined);
    assert.equal(off.stats, undefined);
    assert.equal(off.vmmCpuSeconds, undefined);
    checkStrictly(formatMetrics(snapshot));
  });
});

Deno.test("processCpuSeconds() refuses a pid that now belongs to another process", () => {
  assert.ok((processCpuSeconds(Deno.pid, -1) ?? -1) >= 0);
  assert.equal(processCpuSeconds(Deno.pid, 1), undefined, "another start time");
  assert.equal(processCpuSeconds(2 ** 22 + 7, -1), undefined, "no such process");
});
