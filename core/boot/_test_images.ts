/**
 * Builders of small, well-formed kernel images for the boot tests; each test then breaks
 * one field. Not part of the public API.
 *
 * @module
 */

export interface TestSegment {
  paddr: number;
  data: Uint8Array;
  /** Defaults to data.length. */
  memorySize?: number;
}

export interface TestElfOptions {
  entry?: number;
  segments?: TestSegment[];
  /** Adds a Xen PHYS32_ENTRY note with this value. */
  pvhEntry?: number;
  /** Width of the note's value: 4 (Linux's .long) or 8. */
  pvhEntryBytes?: 4 | 8;
  machine?: number;
}

/** An ELF64 x86-64 ET_EXEC with the given PT_LOAD segments and an optional PVH note. */
export function buildElf(options: TestElfOptions = {}): Uint8Array {
  const segments = options.segments ??
    [{ paddr: 0x100000, data: new Uint8Array([0xf4, 0xeb, 0xfd]), memorySize: 0x2000 }];
  const note = options.pvhEntry === undefined
    ? undefined
    : xenNote(options.pvhEntry, options.pvhEntryBytes ?? 4);
  const phnum = segments.length + (note ? 1 : 0);
  const phoff = 64;
  let dataOffset = phoff + phnum * 56;
  const total = dataOffset + segments.reduce((n, s) => n + s.data.length, 0) +
    (note?.length ?? 0);
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  view.setUint16(16, 2, true); // ET_EXEC
  view.setUint16(18, options.machine ?? 62, true);
  view.setUint32(20, 1, true);
  view.setBigUint64(24, BigInt(options.entry ?? segments[0]?.paddr ?? 0), true);
  view.setBigUint64(32, BigInt(phoff), true);
  view.setUint16(52, 64, true);
  view.setUint16(54, 56, true);
  view.setUint16(56, phnum, true);
  let ph = phoff;
  for (const s of segments) {
    view.setUint32(ph, 1, true); // PT_LOAD
    view.setUint32(ph + 4, 5, true); // R+X
    view.setBigUint64(ph + 8, BigInt(dataOffset), true);
    view.setBigUint64(ph + 16, BigInt(s.paddr), true);
    view.setBigUint64(ph + 24, BigInt(s.paddr), true);
    view.setBigUint64(ph + 32, BigInt(s.data.length), true);
    view.setBigUint64(ph + 40, BigInt(s.memorySize ?? s.data.length), true);
    view.setBigUint64(ph + 48, 0x1000n, true);
    bytes.set(s.data, dataOffset);
    dataOffset += s.data.length;
    ph += 56;
  }
  if (note) {
    view.setUint32(ph, 4, true); // PT_NOTE
    view.setBigUint64(ph + 8, BigInt(dataOffset), true);
    view.setBigUint64(ph + 32, BigInt(note.length), true);
    view.setBigUint64(ph + 40, BigInt(note.length), true);
    view.setBigUint64(ph + 48, 4n, true);
    bytes.set(note, dataOffset);
  }
  return bytes;
}

/** Two notes: an unrelated "GNU" one first, then Xen's PHYS32_ENTRY. */
function xenNote(entry: number, width: 4 | 8): Uint8Array {
  const gnu = [4, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 0x47, 0x4e, 0x55, 0, 1, 2, 3, 4];
  const xen = new Uint8Array(12 + 4 + width);
  const view = new DataView(xen.buffer);
  view.setUint32(0, 4, true);
  view.setUint32(4, width, true);
  view.setUint32(8, 18, true);
  xen.set([0x58, 0x65, 0x6e, 0], 12); // "Xen\0"
  if (width === 4) view.setUint32(16, entry, true);
  else view.setBigUint64(16, BigInt(entry), true);
  return new Uint8Array([...gnu, ...xen]);
}

export interface TestBzImageOptions {
  setupSects?: number;
  version?: number;
  loadflags?: number;
  xloadflags?: number;
  /** Bytes of protected-mode kernel after the setup sectors. */
  kernelSize?: number;
  initSize?: number;
  prefAddress?: number;
  kernelAlignment?: number;
  relocatable?: boolean;
  cmdlineSize?: number;
  initrdAddrMax?: number;
}

/** A bzImage-shaped file: boot sector, setup header, setup sectors and a kernel payload. */
export function buildBzImage(options: TestBzImageOptions = {}): Uint8Array {
  const setupSects = options.setupSects ?? 4;
  const kernelSize = options.kernelSize ?? 0x3000;
  const bytes = new Uint8Array((setupSects + 1) * 512 + kernelSize);
  const view = new DataView(bytes.buffer);
  bytes[0x1f1] = setupSects;
  view.setUint32(0x1f4, Math.ceil(kernelSize / 16), true); // syssize in 16-byte paragraphs
  view.setUint16(0x1fe, 0xaa55, true);
  bytes[0x200] = 0xeb; // jmp over the header, as real setup code does
  bytes[0x201] = 0x6a; // header ends at 0x202 + 0x6a = 0x26c
  bytes.set([0x48, 0x64, 0x72, 0x53], 0x202); // "HdrS"
  view.setUint16(0x206, options.version ?? 0x020f, true);
  bytes[0x211] = options.loadflags ?? 0x01; // LOADED_HIGH
  view.setUint32(0x214, 0x100000, true); // code32_start
  view.setUint32(0x22c, options.initrdAddrMax ?? 0x7fffffff, true);
  view.setUint32(0x230, options.kernelAlignment ?? 0x200000, true);
  bytes[0x234] = options.relocatable === false ? 0 : 1;
  bytes[0x235] = 21;
  view.setUint16(0x236, options.xloadflags ?? 0x7f, true);
  view.setUint32(0x238, options.cmdlineSize ?? 2047, true);
  view.setUint32(0x248, 0x3a0, true); // payload_offset
  view.setUint32(0x24c, 0x100, true); // payload_length
  view.setBigUint64(0x258, BigInt(options.prefAddress ?? 0x1000000), true);
  view.setUint32(0x260, options.initSize ?? 0x400000, true);
  // A recognisable protected-mode kernel: its first bytes and its last byte.
  const kernelAt = (setupSects + 1) * 512;
  for (let i = 0; i < kernelSize; i++) bytes[kernelAt + i] = (i * 7 + 1) & 0xff;
  return bytes;
}
