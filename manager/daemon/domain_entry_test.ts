import assert from "node:assert/strict";
import { diskUser, type DomainEntry } from "./domain_entry.ts";
import type { VmmRun } from "./vmm_run.ts";

Deno.test("diskUser() finds the domain using an image through any hardlink of it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/disk.raw`, new Uint8Array(4096));
    await Deno.link(`${dir}/disk.raw`, `${dir}/alias.raw`);
    await Deno.writeFile(`${dir}/other.raw`, new Uint8Array(4096));
    const entry = {
      definition: { name: "web" },
      run: { diskPaths: [`${dir}/disk.raw`] } as unknown as VmmRun,
    } as DomainEntry;
    assert.equal(diskUser([entry], `${dir}/disk.raw`), "web");
    assert.equal(diskUser([entry], `${dir}/alias.raw`), "web");
    assert.equal(diskUser([entry], `${dir}/other.raw`), undefined);
    assert.equal(diskUser([entry], `${dir}/missing.raw`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
