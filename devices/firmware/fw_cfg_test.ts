import assert from "node:assert/strict";
import { GuestMemory } from "../../core/guest_memory.ts";
import {
  FW_CFG_DATA_OFFSET,
  FW_CFG_DMA_ERROR,
  FW_CFG_DMA_OFFSET,
  FW_CFG_DMA_READ,
  FW_CFG_DMA_SELECT,
  FW_CFG_DMA_SKIP,
  FW_CFG_DMA_WRITE,
  FW_CFG_FILE_DIR,
  FW_CFG_ID,
  FW_CFG_NB_CPUS,
  FW_CFG_SELECTOR_OFFSET,
  FW_CFG_SIGNATURE,
  FwCfg,
} from "./fw_cfg.ts";
import { bootOrderFile, E820_RAM, installPlatformFiles } from "./platform_files.ts";

/** Port accesses the way SeaBIOS's paravirt.c makes them. */
function select(dev: FwCfg, key: number): void {
  dev.write(FW_CFG_SELECTOR_OFFSET, Uint8Array.of(key & 0xff, key >> 8));
}
function inb(dev: FwCfg, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const b = new Uint8Array(1);
    dev.read(FW_CFG_DATA_OFFSET, b);
    out.push(b[0]);
  }
  return out;
}
/** outl(cpu_to_be32(value), port): the bytes on the bus are big-endian. */
function outlBe(dev: FwCfg, offset: number, value: number): void {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value);
  dev.write(offset, b);
}
/** qemu_cfg_dma_transfer: an access structure in guest RAM, then its address. */
function dma(
  dev: FwCfg,
  mem: GuestMemory,
  access: number,
  control: number,
  length: number,
  address: number | bigint,
): number {
  const view = new DataView(mem.slice(access, 16).buffer, access, 16);
  view.setUint32(0, control);
  view.setUint32(4, length);
  view.setBigUint64(8, BigInt(address));
  outlBe(dev, FW_CFG_DMA_OFFSET + 4, access);
  return new DataView(mem.read(access, 4).buffer).getUint32(0);
}

function machine(): { dev: FwCfg; mem: GuestMemory; logs: string[] } {
  const mem = GuestMemory.ofSize(1 << 20);
  const logs: string[] = [];
  const dev = new FwCfg(mem, (m) => logs.push(m));
  return { dev, mem, logs };
}

Deno.test("the signature reads QEMU through the data port and QEMU CFG at the DMA ports", () => {
  const { dev } = machine();
  select(dev, FW_CFG_SIGNATURE);
  assert.equal(String.fromCharCode(...inb(dev, 4)), "QEMU");
  const sig = new Uint8Array(8);
  dev.read(FW_CFG_DMA_OFFSET, sig.subarray(0, 4));
  dev.read(FW_CFG_DMA_OFFSET + 4, sig.subarray(4, 8));
  assert.equal(new TextDecoder().decode(sig), "QEMU CFG");
  select(dev, FW_CFG_ID);
  assert.deepEqual(inb(dev, 4), [3, 0, 0, 0]); // traditional + DMA
});

Deno.test("the file directory lists files sorted by name with big-endian size and selector", () => {
  const { dev } = machine();
  const e = dev.addFile("etc/e820", new Uint8Array(40));
  const b = dev.addFile("bootorder", new TextEncoder().encode("HALT\n"));
  select(dev, FW_CFG_FILE_DIR);
  const bytes = Uint8Array.from(inb(dev, 4 + 2 * 64));
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(0), 2);
  assert.equal(view.getUint32(4), 5);
  assert.equal(view.getUint16(8), b);
  assert.equal(new TextDecoder().decode(bytes.subarray(12, 21)), "bootorder");
  assert.equal(bytes[21], 0);
  assert.equal(view.getUint32(68), 40);
  assert.equal(view.getUint16(72), e);
  select(dev, b);
  assert.equal(String.fromCharCode(...inb(dev, 7)), "HALT\n\0\0"); // zeros past the end
});

Deno.test("DMA select+read copies a file into guest RAM and completes with control 0", () => {
  const { dev, mem } = machine();
  const content = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const sel = dev.addFile("etc/acpi/tables", content);
  const control = (sel << 16) | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ;
  assert.equal(dma(dev, mem, 0x1000, control, 100, 0x2000), 0);
  assert.deepEqual(mem.read(0x2000, 100), content.subarray(0, 100));
  assert.equal(dma(dev, mem, 0x1000, FW_CFG_DMA_SKIP, 100, 0), 0);
  assert.equal(dma(dev, mem, 0x1000, FW_CFG_DMA_READ, 200, 0x3000), 0);
  assert.deepEqual(mem.read(0x3000, 100), content.subarray(200, 300));
  assert.deepEqual(mem.read(0x3064, 100), new Uint8Array(100)); // past the end: zeros
});

Deno.test("a hostile DMA buffer outside RAM fails the request, never the device", () => {
  const { dev, mem, logs } = machine();
  const sel = dev.addFile("f", new Uint8Array(16).fill(7));
  mem.fill(0xff000, 0x1000, 0xaa);
  const control = (sel << 16) | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ;
  assert.equal(dma(dev, mem, 0x1000, control, 16, 0x100000), FW_CFG_DMA_ERROR);
  assert.equal(dma(dev, mem, 0x1000, control, 0xffff_ffff, 0), FW_CFG_DMA_ERROR);
  assert.equal(dma(dev, mem, 0x1000, control, 0x2000, 0xff000), FW_CFG_DMA_ERROR);
  assert.equal(dma(dev, mem, 0x1000, control, 16, 0xffff_ffff_ffff_fff0n), FW_CFG_DMA_ERROR);
  assert.equal(mem.readU8(0xff000), 0xaa, "no partial copy");
  // An access structure outside RAM is dropped: nothing to write the error into.
  outlBe(dev, FW_CFG_DMA_OFFSET + 4, 0xfffff8);
  assert.ok(logs.some((m) => m.includes("access structure")));
  // The high half counts: 1 << 32 + 0x1000 is not the access at 0x1000.
  outlBe(dev, FW_CFG_DMA_OFFSET, 1);
  outlBe(dev, FW_CFG_DMA_OFFSET + 4, 0x1000);
  assert.ok(logs.some((m) => m.includes("0x100001000")));
});

Deno.test("DMA writes reach only writable files, within their size", () => {
  const { dev, mem } = machine();
  const ro = dev.addFile("ro", new Uint8Array(8));
  const rw = dev.addFile("rw", new Uint8Array(8), { writable: true });
  mem.write(0x2000, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9));
  const write = FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE;
  assert.equal(dma(dev, mem, 0x1000, (ro << 16) | write, 4, 0x2000), FW_CFG_DMA_ERROR);
  assert.equal(dma(dev, mem, 0x1000, (rw << 16) | write, 9, 0x2000), FW_CFG_DMA_ERROR);
  assert.equal(dma(dev, mem, 0x1000, (rw << 16) | write, 8, 0x2000), 0);
  assert.deepEqual([...dev.file("rw")!], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...dev.file("ro")!], [0, 0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("an unknown selector reads zeros and DMA from it fills zeros", () => {
  const { dev, mem } = machine();
  select(dev, 0x3fff);
  assert.deepEqual(inb(dev, 3), [0, 0, 0]);
  mem.fill(0x2000, 4, 0x55);
  const control = (0x1234 << 16) | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ;
  assert.equal(dma(dev, mem, 0x1000, control, 4, 0x2000), 0);
  assert.deepEqual([...mem.read(0x2000, 4)], [0, 0, 0, 0]);
});

Deno.test("platform files carry the CPU count, e820, boot order and sercon port", () => {
  const { dev } = machine();
  installPlatformFiles(dev, {
    cpus: 3,
    e820: [{ address: 0, length: 0x9fc00, type: E820_RAM }],
    bootOrder: [{ kind: "ahci", slot: 4, port: 1 }, { kind: "pci", slot: 5 }],
    serconPort: 0x3f8,
  });
  select(dev, FW_CFG_NB_CPUS);
  assert.deepEqual(inb(dev, 2), [3, 0]);
  assert.equal(
    new TextDecoder().decode(dev.file("bootorder")),
    "/pci@i0cf8/*@4/drive@1/disk@0\n/pci@i0cf8/*@5\nHALT\n",
  );
  assert.deepEqual([...dev.file("etc/sercon-port")!], [0xf8, 0x03]);
  const e820 = new DataView(dev.file("etc/e820")!.buffer);
  assert.equal(e820.getBigUint64(8, true), 0x9fc00n);
  assert.equal(e820.getUint32(16, true), E820_RAM);
  const anchor = dev.file("etc/smbios/smbios-anchor")!;
  assert.equal(anchor.reduce((s, b) => s + b, 0) % 256, 0);
  assert.throws(() => bootOrderFile([{ kind: "pci", slot: 40 }]), /not a PCI slot/);
});

Deno.test("save and restore keep the cursor and refuse another machine's files", () => {
  const { dev, mem } = machine();
  const sel = dev.addFile("a", Uint8Array.of(1, 2, 3, 4));
  dev.addFile("w", new Uint8Array(2), { writable: true });
  select(dev, sel);
  inb(dev, 2);
  const state = JSON.parse(JSON.stringify(dev.save()));
  const other = new FwCfg(mem);
  other.addFile("a", Uint8Array.of(1, 2, 3, 4));
  other.addFile("w", new Uint8Array(2), { writable: true });
  other.restore(state);
  assert.deepEqual(inb(other, 2), [3, 4]);
  const wrong = new FwCfg(mem);
  wrong.addFile("b", new Uint8Array(1));
  assert.throws(() => wrong.restore(state), /differ/);
  assert.throws(() => other.restore({ ...state, offset: -1 }), /state\.offset/);
  assert.throws(() => other.restore({ ...state, writable: { w: [1, 2, 3] } }), /writable\.w/);
});
