/**
 * The layering the README draws, enforced: every import of every .ts file (type-only and
 * dynamic ones included, read by Deno's own parser through `deno info --json`) points to
 * the same folder or a lower one in
 *
 *   ffi < common < core < storage < devices < vmm < manager < cli < (main.ts, mod.ts,
 *   bench/, tests/, guests/, scripts/)
 *
 * and the folders form no cycle. Unit tests (`*_test.ts`), their `*_test_support.ts` and `testing/` helpers beside the
 * code count as tests (the top), whatever their folder: no program code imports them.
 * Data modules (deno.json, the embedded guest images) import nothing and may be imported
 * from anywhere. Raw pointers and libc calls stay in ffi/. An edge that
 * must stay for now is listed in EXCEPTIONS with its reason; an exception that no longer
 * occurs fails the test too, so the list only shrinks.
 */
import assert from "node:assert/strict";
import { relative } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL } from "node:url";

const ROOT = fromFileUrl(new URL("..", import.meta.url));

/** The layers, bottom first. Files at the root and these top folders sit above them all. */
const LAYERS = ["ffi", "common", "core", "storage", "devices", "vmm", "manager", "cli"] as const;
const TOP = new Set(["bench", "tests", "guests", "scripts"]);
/** Generated or foreign trees that are not part of the program. */
const SKIPPED = [".git", "node_modules", "guests/build"];
/** Data, not code: importable from every layer (checked to import nothing). */
const DATA = ["deno.json", "guests/embedded/"];

/**
 * Import edges allowed to point up for now: `from-file -> to-file` and why. Keep this to
 * a few justified lines; every one is a debt with an owner.
 */
const EXCEPTIONS: Record<string, string> = {};

/** Files outside ffi/ allowed to hold raw pointers or libc calls for now, and why. */
const FFI_EXCEPTIONS: Record<string, string> = {};

type Layer = string;

function isData(file: string): boolean {
  return DATA.some((data) => data.endsWith("/") ? file.startsWith(data) : file === data);
}

function isTestCode(file: string): boolean {
  return /(_test|_test_support)\.ts$/.test(file) || file.includes("/testing/");
}

function layerOf(file: string): Layer {
  if (isData(file)) return "(data)";
  if (isTestCode(file)) return "tests";
  const slash = file.indexOf("/");
  return slash < 0 ? "(root)" : file.slice(0, slash);
}

function rank(layer: Layer): number {
  if (layer === "(data)") return -1;
  const index = (LAYERS as readonly string[]).indexOf(layer);
  if (index >= 0) return index;
  if (layer === "(root)" || TOP.has(layer)) return LAYERS.length;
  return Number.NaN;
}

function sourceFiles(dir = ROOT): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir === ROOT ? ROOT : `${dir}/`}${entry.name}`;
    const file = relative(ROOT, path);
    if (SKIPPED.includes(file)) continue;
    if (entry.isDirectory) files.push(...sourceFiles(path));
    else if (entry.isFile && file.endsWith(".ts")) files.push(file);
  }
  return files.sort();
}

interface InfoModule {
  specifier: string;
  dependencies?: {
    specifier: string;
    code?: { specifier?: string };
    type?: { specifier?: string };
  }[];
}

/** Every import edge between the project's files, as `from -> to` relative paths. */
async function importEdges(files: string[]): Promise<Map<string, Set<string>>> {
  // One entry module importing every file, so one `deno info` reads the whole graph.
  const entry = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      entry,
      files.map((file) => `import ${JSON.stringify(pathToFileURL(`${ROOT}${file}`).href)};`).join(
        "\n",
      ),
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", `${ROOT}deno.json`, entry],
      cwd: ROOT,
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const graph = JSON.parse(new TextDecoder().decode(stdout)) as { modules: InfoModule[] };
    const edges = new Map<string, Set<string>>();
    for (const module of graph.modules) {
      if (!module.specifier.startsWith("file://")) continue;
      const from = relative(ROOT, fromFileUrl(module.specifier));
      if (from.startsWith("..")) continue; // the entry module
      for (const dependency of module.dependencies ?? []) {
        for (const resolved of [dependency.code?.specifier, dependency.type?.specifier]) {
          if (!resolved?.startsWith("file://")) continue;
          const to = relative(ROOT, fromFileUrl(resolved));
          if (to.startsWith("..")) continue;
          if (!edges.has(from)) edges.set(from, new Set());
          edges.get(from)!.add(to);
        }
      }
    }
    return edges;
  } finally {
    await Deno.remove(entry);
  }
}

/** Folder cycles (strongly connected components of more than one folder). */
function folderCycles(edges: Map<string, Set<string>>): string[][] {
  const graph = new Map<Layer, Set<Layer>>();
  for (const [from, targets] of edges) {
    for (const to of targets) {
      if (`${from} -> ${to}` in EXCEPTIONS) continue; // reported by the upward test
      // The top (root files, bench, tests, guests, scripts) is one layer: its folders may
      // use each other's helpers.
      const a = rank(layerOf(from)) === LAYERS.length ? "(top)" : layerOf(from);
      const b = rank(layerOf(to)) === LAYERS.length ? "(top)" : layerOf(to);
      if (a === b) continue;
      if (!graph.has(a)) graph.set(a, new Set());
      graph.get(a)!.add(b);
    }
  }
  // Tarjan's algorithm.
  let counter = 0;
  const index = new Map<Layer, number>();
  const low = new Map<Layer, number>();
  const stack: Layer[] = [];
  const onStack = new Set<Layer>();
  const cycles: string[][] = [];
  const visit = (node: Layer): void => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: Layer[] = [];
      let member: Layer;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

const files = sourceFiles();
const edges = await importEdges(files);

Deno.test("every .ts file sits in a known layer", () => {
  const unknown = files.filter((file) => Number.isNaN(rank(layerOf(file))));
  assert.deepEqual(unknown, [], "give these folders a place in LAYERS or TOP");
});

Deno.test("imports point down the layers (ffi < common < core < storage < devices < vmm < manager < cli)", () => {
  const upward: string[] = [];
  for (const [from, targets] of edges) {
    for (const to of targets) {
      if (rank(layerOf(to)) > rank(layerOf(from))) upward.push(`${from} -> ${to}`);
    }
  }
  const unexpected = upward.filter((edge) => !(edge in EXCEPTIONS));
  const stale = Object.keys(EXCEPTIONS).filter((edge) => !upward.includes(edge));
  assert.deepEqual(unexpected, [], "upward imports: move the shared piece down (common/, ffi/)");
  assert.deepEqual(stale, [], "these exceptions no longer occur: remove them from EXCEPTIONS");
});

Deno.test("data modules import nothing of the project", () => {
  const importing = [...edges.keys()].filter((file) => isData(file) && edges.get(file)!.size > 0);
  assert.deepEqual(importing, []);
});

Deno.test("the folders form no import cycle", () => {
  assert.deepEqual(folderCycles(edges), []);
});

Deno.test("raw pointers and libc calls stay in ffi/", async () => {
  // Spelled in two parts so this file does not match itself.
  const needles = ["Deno." + "UnsafePointer", "libc" + "("];
  const found: string[] = [];
  for (const file of files) {
    if (file.startsWith("ffi/")) continue;
    const text = await Deno.readTextFile(`${ROOT}${file}`);
    if (needles.some((needle) => text.includes(needle))) found.push(file);
  }
  const unexpected = found.filter((file) => !(file in FFI_EXCEPTIONS));
  const stale = Object.keys(FFI_EXCEPTIONS).filter((file) => !found.includes(file));
  assert.deepEqual(
    unexpected,
    [],
    "wrap the call in ffi/ (fs.ts, socket.ts, epoll.ts, mman.ts...)",
  );
  assert.deepEqual(stale, [], "these files are clean now: remove them from FFI_EXCEPTIONS");
});
