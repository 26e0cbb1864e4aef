import assert from "node:assert/strict";
import { DEMO_GUEST_ELF } from "./embedded/demo_guest.ts";

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

interface ProgramHeader {
  type: number;
  offset: number;
  paddr: number;
  fileSize: number;
  memSize: number;
}

function programHeaders(elf: Uint8Array): ProgramHeader[] {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const phoff = Number(view.getBigUint64(0x20, true));
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  return Array.from({ length: phnum }, (_, i) => {
    const at = phoff + i * phentsize;
    return {
      type: view.getUint32(at, true),
      offset: Number(view.getBigUint64(at + 8, true)),
      paddr: Number(view.getBigUint64(at + 24, true)),
      fileSize: Number(view.getBigUint64(at + 32, true)),
      memSize: Number(view.getBigUint64(at + 40, true)),
    };
  });
}

/** Returns the PVH entry from the XEN_ELFNOTE_PHYS32_ENTRY note, or undefined. */
function pvhEntry(elf: Uint8Array, note: ProgramHeader): number | undefined {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  let at = note.offset;
  while (at + 12 <= note.offset + note.fileSize) {
    const nameSize = view.getUint32(at, true);
    const descSize = view.getUint32(at + 4, true);
    const type = view.getUint32(at + 8, true);
    const name = new TextDecoder().decode(elf.subarray(at + 12, at + 12 + nameSize));
    const desc = at + 12 + ((nameSize + 3) & ~3);
    if (name === "Xen\0" && type === XEN_ELFNOTE_PHYS32_ENTRY) return view.getUint32(desc, true);
    at = desc + ((descSize + 3) & ~3);
  }
  return undefined;
}

Deno.test("DEMO_GUEST_ELF is a static x86-64 ELF executable", () => {
  assert.deepEqual([...DEMO_GUEST_ELF.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  assert.equal(DEMO_GUEST_ELF[4], 2, "ELFCLASS64");
  const view = new DataView(DEMO_GUEST_ELF.buffer, DEMO_GUEST_ELF.byteOffset);
  assert.equal(view.getUint16(0x12, true), 0x3e, "EM_X86_64");
  const types = programHeaders(DEMO_GUEST_ELF).map((h) => h.type);
  assert.ok(!types.includes(PT_INTERP) && !types.includes(PT_DYNAMIC));
});

Deno.test("DEMO_GUEST_ELF loads at 1 MiB with its PVH entry inside the loaded image", () => {
  const headers = programHeaders(DEMO_GUEST_ELF);
  const load = headers.find((h) => h.type === PT_LOAD);
  const note = headers.find((h) => h.type === PT_NOTE);
  assert.ok(load && note, "needs a PT_LOAD and a PT_NOTE");
  assert.equal(load.paddr, 0x100000);
  assert.ok(load.memSize >= load.fileSize);
  const entry = pvhEntry(DEMO_GUEST_ELF, note);
  assert.ok(entry !== undefined, "no XEN_ELFNOTE_PHYS32_ENTRY note");
  assert.ok(entry >= load.paddr && entry < load.paddr + load.fileSize);
});

const BUILT_DEMO = new URL("./build/demo.elf", import.meta.url);

/** Whether guests/build.sh has run here (only then is there a built demo to compare). */
function demoBuilt(): boolean {
  try {
    return Deno.statSync(BUILT_DEMO).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

const built = demoBuilt();

Deno.test({
  name: "DEMO_GUEST_ELF matches guests/build/demo.elf" +
    (built ? "" : " [SKIPPED: guests not built; run guests/build.sh]"),
  ignore: !built,
}, async () => {
  const bytes = await Deno.readFile(BUILT_DEMO);
  assert.deepEqual(DEMO_GUEST_ELF, bytes, "run guests/build.sh to regenerate the embedded demo");
});
