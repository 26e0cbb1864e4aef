/**
 * Clone fan-out through a real `denovisor daemon`: N clones (default 20) of one snapshot
 * of a running guest, each with its own MAC, tap and qcow2 overlay, from the clone request
 * to every clone's guest running (a beat in its log after its restore), and the VMMs'
 * summed Rss and Pss (/proc/<pid>/smaps) once they all run. The baseline, in the same run
 * and daemon: the same N domains booted fresh (defined and started all at once, each with
 * its own volume and tap) to their first beat, and their summed Rss and Pss.
 *
 * The guest is guests/domain.c with `fill=16` in 64 MiB: 16 MiB of pages in use, read at
 * every beat, so a clone maps them all from the snapshot's memory file (shared page
 * cache) where a booted guest has its own copy.
 *
 * Usage: deno run -A bench/clones.ts [--count N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { DomainDefinition, DomainInfo } from "../manager/api_types.ts";
import { BenchDaemon } from "./domains.ts";
import { CouldNotMeasureError, ensureGuest, fixed, requireKvm, runBenchmark } from "./_support.ts";

const GUEST_MIB = 64;
const FILL_MIB = 16;
const RESTORED = "denovisor vmm: restored from";
const WAIT_MS = 600_000;

function definition(name: string, kernel: string, volume: string): DomainDefinition {
  return {
    name,
    boot: { kernel, cmdline: `fill=${FILL_MIB}` },
    memory: GUEST_MIB,
    disks: [{ volume }],
    nics: [{}],
  };
}

async function logOf(daemon: BenchDaemon, name: string): Promise<string> {
  return await (await daemon.api.request("GET", `/v1/domains/${name}/logs?lines=200`)).text();
}

/** Waits until every domain's log shows a beat after `marker` (or anywhere, without). */
async function allBeating(daemon: BenchDaemon, names: string[], marker?: string) {
  const deadline = Date.now() + WAIT_MS;
  const waiting = new Set(names);
  while (waiting.size > 0) {
    if (Date.now() > deadline) {
      throw new CouldNotMeasureError(`no beat from ${[...waiting].join(", ")}`);
    }
    for (const name of [...waiting]) {
      const text = await logOf(daemon, name);
      const after = marker === undefined ? text : text.split(marker).slice(1).join(marker);
      if (/tick \d+ fill ok/.test(after)) waiting.delete(name);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The Deno binary, to know a VMM process by its executable. */
const DENO = Deno.statSync(Deno.execPath());

/** The VMM processes (Deno) under the launcher pids of `domains`. */
function vmmPids(pids: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // Gone.
    }
  }
  const found: number[] = [];
  for (const root of pids) {
    const under = [root];
    for (let i = 0; i < under.length; i++) under.push(...(children.get(under[i]) ?? []));
    const denos = under.filter((pid) => {
      try {
        // By inode: a jailed VMM's binary is bound into its jail under another name.
        const exe = Deno.statSync(`/proc/${pid}/exe`);
        return exe.dev === DENO.dev && exe.ino === DENO.ino;
      } catch {
        return false;
      }
    });
    if (denos.length !== 1) throw new CouldNotMeasureError(`no single VMM under pid ${root}`);
    found.push(denos[0]);
  }
  return found;
}

/** Summed Rss and Pss in MiB of `pids`. */
function memory(pids: number[]): { rss: number; pss: number } {
  let rss = 0;
  let pss = 0;
  for (const pid of pids) {
    const rollup = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    rss += Number(rollup.match(/^Rss:\s+(\d+) kB/m)?.[1] ?? NaN);
    pss += Number(rollup.match(/^Pss:\s+(\d+) kB/m)?.[1] ?? NaN);
  }
  return { rss: rss / 1024, pss: pss / 1024 };
}

async function destroyAll(daemon: BenchDaemon, names: string[]): Promise<void> {
  for (const name of names) {
    await daemon.api.post(`/v1/domains/${name}/destroy`).catch(() => {});
    await daemon.api.delete(`/v1/domains/${name}`).catch(() => {});
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: Deno.args, options: { count: { type: "string" } } });
  const count = Number(values.count ?? 20);
  if (!Number.isInteger(count) || count < 1) throw new Error("--count: a whole number >= 1");
  await requireKvm();
  const kernel = await ensureGuest("domain");
  const daemon = await BenchDaemon.start();
  try {
    const api = daemon.api;
    await api.post("/v1/pools", { name: "default", type: "dir", path: `${daemon.dir}/pool` });
    await api.post("/v1/pools/default/build");
    await api.post("/v1/pools/default/start");
    const volume = (name: string) =>
      api.post("/v1/pools/default/volumes", { name, size: "1M", format: "qcow2" });
    await volume("root");
    await api.post("/v1/domains?start=1", definition("src", kernel, "root"));
    await allBeating(daemon, ["src"]);
    await api.post("/v1/domains/src/snapshots", { name: "base" });
    await api.post("/v1/domains/src/destroy");

    let started = performance.now();
    const clones = await api.post<DomainInfo[]>("/v1/domains/src/clone", {
      name: "c",
      count,
      snapshot: "base",
      start: true,
    });
    const answered = performance.now() - started;
    const cloneNames = clones.map((clone) => clone.name);
    await allBeating(daemon, cloneNames, RESTORED);
    const cloneMs = performance.now() - started;
    const cloneInfos = await Promise.all(cloneNames.map((name) =>
      api.get<DomainInfo>(
        `/v1/domains/${name}`,
      )
    ));
    const cloneMemory = memory(vmmPids(cloneInfos.map((info) => info.pid!)));
    await destroyAll(daemon, cloneNames);

    const bootNames = Array.from({ length: count }, (_, i) => `b-${i + 1}`);
    for (const name of bootNames) await volume(`${name}-root`);
    started = performance.now();
    const booted = await Promise.all(
      bootNames.map((name) =>
        api.post<DomainInfo>("/v1/domains?start=1", definition(name, kernel, `${name}-root`))
      ),
    );
    await allBeating(daemon, bootNames);
    const bootMs = performance.now() - started;
    const bootMemory = memory(vmmPids(booted.map((info) => info.pid!)));
    await destroyAll(daemon, bootNames);

    console.log(
      `clone fan-out: ${count} clones of one snapshot (${GUEST_MIB} MiB guests, ` +
        `${FILL_MIB} MiB in use) vs ${count} fresh boots of the same domain:`,
    );
    console.log(
      `  to all running: clones ${fixed(cloneMs / 1000, 1)} s (clone request answered after ` +
        `${fixed(answered / 1000, 1)} s; ${fixed(cloneMs / count / 1000, 2)} s per clone), ` +
        `boots ${fixed(bootMs / 1000, 1)} s; ratio clones/boots ${fixed(cloneMs / bootMs)}x`,
    );
    console.log(
      `  VMMs' memory: clones Rss ${fixed(cloneMemory.rss, 0)} MiB, Pss ` +
        `${fixed(cloneMemory.pss, 0)} MiB; boots Rss ${fixed(bootMemory.rss, 0)} MiB, Pss ` +
        `${fixed(bootMemory.pss, 0)} MiB; ratio of Pss clones/boots ` +
        `${fixed(cloneMemory.pss / bootMemory.pss)}x`,
    );
  } finally {
    await daemon.stop();
  }
}

if (import.meta.main) await runBenchmark("clones", main);
