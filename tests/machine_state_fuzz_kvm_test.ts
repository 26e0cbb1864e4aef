/**
 * Hostile state files through the whole restore path. A real machine (2 vCPUs, virtio-blk
 * on MMIO and PCI, virtio-net on PCI, virtio-rng, a virtio console; guests/domain.c with
 * its disk driver set up) is saved; then its state document is mutated — a field of a
 * section set to a hostile value (out of range, negative, fractional, another type), a
 * field removed, two sections' states swapped, a section's id, kind or version changed,
 * the memory ranges or the config changed — and written back with a valid checksum (so
 * the mutation gets past the file's own checks, vmm/snapshot/state_file_test.ts fuzzes
 * those), and restored into a machine of the same config. Every restore must either be
 * refused with a DenovisorError (a message, no TypeError or RangeError from unchecked
 * input, no crash) or give a machine; none runs a vCPU, and the good file still restores
 * after them all.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DenovisorError } from "../common/errors.ts";
import { Kvm } from "../core/kvm.ts";
import { build, loadBootImage, restore } from "../vmm/builder.ts";
import type { Machine } from "../vmm/machine.ts";
import { saveMachine } from "../vmm/snapshot/save_machine.ts";
import type { StateDocument } from "../vmm/snapshot/state_document.ts";
import { readStateFile, writeStateFile } from "../vmm/snapshot/state_file.ts";
import type { VmmMachineConfig } from "../vmm/vmm_config.ts";
import { guest } from "./cli_support.ts";
import { kvmTest } from "./kvm_support.ts";
import { TextSink } from "./text_sink.ts";

const MUTATIONS = 300;

function config(dir: string): VmmMachineConfig {
  return {
    vcpus: 2,
    memoryBytes: 64 * 1024 * 1024,
    boot: { kind: "linux", kernel: guest("domain"), cmdline: "transport=mmio" },
    disks: [
      {
        id: "root",
        path: join(dir, "root.raw"),
        format: "raw",
        readOnly: false,
        transport: "mmio",
      },
      { id: "data", path: join(dir, "data.raw"), format: "raw", readOnly: false, transport: "pci" },
    ],
    nics: [{ id: "net0", tap: "auto", mac: "52:54:00:9a:00:02", transport: "pci" }],
    rng: {},
    balloon: false,
    virtioConsole: true,
    transport: "mmio",
  };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A small deterministic generator, so that a failure can be replayed. */
function generator(seed: number): (limit: number) => number {
  let state = seed >>> 0;
  return (limit) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % limit;
  };
}

/** Every path to a node under `node` (objects and arrays included). */
function paths(node: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const found = [prefix];
  if (Array.isArray(node)) node.forEach((child, i) => found.push(...paths(child, [...prefix, i])));
  else if (node && typeof node === "object") {
    for (const [key, child] of Object.entries(node)) found.push(...paths(child, [...prefix, key]));
  }
  return found;
}

const HOSTILE: Json[] = [
  -1,
  0,
  1.5,
  2 ** 32,
  2 ** 53,
  -(2 ** 63),
  0xffff,
  65536,
  "",
  "0xffffffffffffffffff",
  "not a number",
  "-1",
  true,
  null,
  [],
  {},
  [1, 2, 3],
  { version: 1 },
];

/** Replaces the node at `keys` under `root` (which must not be the root itself). */
function setAt(root: Json, keys: (string | number)[], value: Json | undefined): void {
  let node = root as Record<string | number, Json>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string | number, Json>;
  const last = keys[keys.length - 1];
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else node[last] = value;
}

function getAt(root: Json, keys: (string | number)[]): Json {
  let node = root;
  for (const key of keys) node = (node as Record<string | number, Json>)[key];
  return node;
}

/** One mutation of the document and what it was. */
function mutate(good: StateDocument, random: (limit: number) => number): [Json, string] {
  const document = structuredClone(good) as unknown as { [key: string]: Json };
  const sections = document.sections as { [key: string]: Json }[];
  const kind = random(10);
  if (kind === 0) {
    const a = random(sections.length);
    const b = random(sections.length);
    [sections[a].state, sections[b].state] = [sections[b].state, sections[a].state];
    return [document, `states of ${sections[a].id} and ${sections[b].id} swapped`];
  }
  if (kind === 1) {
    const section = sections[random(sections.length)];
    const field = ["id", "kind", "version"][random(3)];
    const value = field === "version" ? [0, 2, -1, 1.5][random(4)] : `${section[field]}x`;
    const description = `${section.id}.${field} = ${JSON.stringify(value)}`;
    section[field] = value;
    return [document, description];
  }
  // A node of a section's state (mostly), of the memory description or of the config.
  const where = kind === 2 ? ["memory"] : kind === 3 ? ["config"] : [
    "sections",
    random(sections.length),
    "state",
  ];
  const candidates = paths(getAt(document, where)).filter((p) => p.length > 0);
  if (candidates.length === 0) return [document, `nothing under ${where.join(".")}`];
  const keys = [...where, ...candidates[random(candidates.length)]];
  const at = keys.join(".");
  if (random(5) === 0) {
    setAt(document, keys, undefined);
    return [document, `${at} removed`];
  }
  const value = HOSTILE[random(HOSTILE.length)];
  setAt(document, keys, value);
  return [document, `${at} = ${JSON.stringify(value)}`];
}

async function test(): Promise<void> {
  using kvm = Kvm.open();
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "denovisor-state-fuzz-" });
  try {
    for (const disk of ["root.raw", "data.raw"]) {
      await Deno.writeFile(join(dir, disk), new Uint8Array(1024 * 1024));
    }
    const boot = await loadBootImage(config(dir).boot);
    const stateFile = join(dir, "good.state");
    const console = new TextSink();
    const machine = build(config(dir), { kvm, console, boot });
    try {
      machine.start();
      await console.waitForTick(2, 60_000);
      machine.serial.receive(new TextEncoder().encode("disk\n"));
      await console.waitFor(/disk: ok/, 60_000);
      await machine.pause();
      await saveMachine(machine, config(dir), kvm, { stateFile });
    } finally {
      machine.stop("saved");
      await machine.close();
    }
    const state = await readStateFile(stateFile);
    const good = state.document;
    state.close();
    assert.equal(good.memory.storage, "file");

    const fuzzed = join(dir, "fuzzed.state");
    const random = generator(20261203);
    let refused = 0;
    let accepted = 0;
    const unclean: string[] = [];
    for (let i = 0; i < MUTATIONS; i++) {
      const [document, description] = mutate(good, random);
      await Deno.remove(fuzzed).catch(() => {});
      await writeStateFile(fuzzed, document as unknown as StateDocument);
      let restored: Machine | undefined;
      try {
        restored = await restore(config(dir), { stateFile: fuzzed }, {
          kvm,
          console: new TextSink(),
          boot,
        });
        accepted++;
      } catch (error) {
        if (error instanceof DenovisorError && error.message.length > 0) refused++;
        else unclean.push(`${description}: ${(error as Error)?.stack ?? error}`);
      } finally {
        if (restored) {
          restored.stop("fuzz");
          await restored.close();
        }
      }
    }
    assert.deepEqual(unclean, [], `${unclean.length} mutations failed uncleanly`);
    assert.ok(refused > MUTATIONS / 2, `only ${refused} of ${MUTATIONS} refused`);
    console.text = "";
    // The good state still restores and runs after all that.
    const again = await restore(config(dir), { stateFile }, { kvm, console, boot });
    try {
      again.start();
      await console.waitFor(/tick \d+/, 60_000);
    } finally {
      again.stop("test over");
      await again.close();
    }
    globalThis.console.log(`${refused} refused, ${accepted} accepted of ${MUTATIONS}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

kvmTest(
  "hostile state documents of a real machine with devices are refused cleanly by restore",
  test,
  300_000,
);
