/** The tree stays `deno fmt`, `deno lint` and `deno check` clean. */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

async function deno(...args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT })
    .output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test("the tree is formatted (deno fmt --check)", async () => {
  const { code, output } = await deno("fmt", "--check");
  assert.equal(code, 0, output);
});

Deno.test("the tree is lint-free (deno lint)", async () => {
  const { code, output } = await deno("lint");
  assert.equal(code, 0, output);
});

Deno.test("the executable and the library type-check (deno check)", async () => {
  const { code, output } = await deno("check", "main.ts", "mod.ts", "vmm/vcpu_worker_main.ts");
  assert.equal(code, 0, output);
});
