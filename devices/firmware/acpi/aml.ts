/**
 * A small AML encoder: the subset of ACPI Machine Language (ACPI 6.5, chapter 20) a DSDT
 * for a PC needs — names, integers, strings, buffers, packages, scopes, devices, methods
 * and resource templates. Each function returns the encoded bytes of one term, so a
 * table is written as nested calls that read like ASL:
 *
 * ```ts ignore
 * scope("\\_SB", [device("PCI0", [name("_HID", eisaId("PNP0A03"))])])
 * ```
 *
 * @module
 */

import { DenovisorError } from "../../../common/errors.ts";

/** AML bytes of one term. */
export type Aml = Uint8Array;

/** A name or value that AML cannot represent. */
export class AmlError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

const ZERO_OP = 0x00;
const ONE_OP = 0x01;
const NAME_OP = 0x08;
const BYTE_PREFIX = 0x0a;
const WORD_PREFIX = 0x0b;
const DWORD_PREFIX = 0x0c;
const STRING_PREFIX = 0x0d;
const QWORD_PREFIX = 0x0e;
const SCOPE_OP = 0x10;
const BUFFER_OP = 0x11;
const PACKAGE_OP = 0x12;
const METHOD_OP = 0x14;
const DUAL_NAME_PREFIX = 0x2e;
const MULTI_NAME_PREFIX = 0x2f;
const EXT_OP_PREFIX = 0x5b;
const DEVICE_OP = 0x82;
const RETURN_OP = 0xa4;
const ROOT_CHAR = 0x5c;
const PARENT_PREFIX = 0x5e;
const ONES_OP = 0xff;

/** Concatenates terms. */
export function cat(...parts: (Aml | readonly Aml[])[]): Aml {
  const flat = parts.flatMap((p) => (p instanceof Uint8Array ? [p] : [...p]));
  const out = new Uint8Array(flat.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of flat) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** PkgLength (20.2.4) followed by `body`: the length counts itself and the body. */
export function withPkgLength(body: Aml): Aml {
  const n = body.length;
  let bytes: number[];
  if (n + 1 < 0x40) {
    bytes = [n + 1];
  } else {
    const extra = n + 2 < 0x1000 ? 1 : n + 3 < 0x10_0000 ? 2 : 3;
    const total = n + 1 + extra;
    if (total >= 0x1000_0000) throw new AmlError(`AML package of ${n} bytes is too long`);
    bytes = [(extra << 6) | (total & 0x0f)];
    for (let i = 0; i < extra; i++) bytes.push((total >>> (4 + 8 * i)) & 0xff);
  }
  return cat(Uint8Array.from(bytes), body);
}

/** One 4-character name segment, padded with underscores ("ISA" -> "ISA_"). */
function nameSeg(seg: string): number[] {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) {
    throw new AmlError(`"${seg}" is not an ACPI name segment (1-4 of A-Z, 0-9, _; no digit first)`);
  }
  return [...seg.padEnd(4, "_")].map((c) => c.charCodeAt(0));
}

/** A NameString: `\` and `^` prefixes, then segments separated by dots ("\\_SB.PCI0"). */
export function nameString(path: string): Aml {
  const out: number[] = [];
  let rest = path;
  if (rest.startsWith("\\")) {
    out.push(ROOT_CHAR);
    rest = rest.slice(1);
  }
  while (rest.startsWith("^")) {
    out.push(PARENT_PREFIX);
    rest = rest.slice(1);
  }
  const segs = rest === "" ? [] : rest.split(".");
  if (segs.length === 0) out.push(0); // NullName
  else if (segs.length === 1) out.push(...nameSeg(segs[0]));
  else if (segs.length === 2) out.push(DUAL_NAME_PREFIX, ...segs.flatMap(nameSeg));
  else out.push(MULTI_NAME_PREFIX, segs.length, ...segs.flatMap(nameSeg));
  return Uint8Array.from(out);
}

/** An integer constant in the shortest encoding (Zero, One, Ones, Byte/Word/DWord/QWord). */
export function int(value: number | bigint): Aml {
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new AmlError(`${value} is not a 64-bit integer`);
  if (v === 0n) return Uint8Array.of(ZERO_OP);
  if (v === 1n) return Uint8Array.of(ONE_OP);
  if (v === 0xffff_ffff_ffff_ffffn) return Uint8Array.of(ONES_OP);
  const [prefix, size] = v <= 0xffn
    ? [BYTE_PREFIX, 1]
    : v <= 0xffffn
    ? [WORD_PREFIX, 2]
    : v <= 0xffff_ffffn
    ? [DWORD_PREFIX, 4]
    : [QWORD_PREFIX, 8];
  const out = [prefix];
  for (let i = 0; i < size; i++) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
  return Uint8Array.from(out);
}

/** A string constant (ASCII, no NUL). */
export function str(value: string): Aml {
  if ([...value].some((c) => c.charCodeAt(0) === 0 || c.charCodeAt(0) > 0x7f)) {
    throw new AmlError(`AML strings are ASCII without NUL`);
  }
  return cat(Uint8Array.of(STRING_PREFIX), new TextEncoder().encode(value), Uint8Array.of(0));
}

/** A compressed EISA ID ("PNP0A03") as the DWord ASL's EisaId() makes. */
export function eisaId(id: string): Aml {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new AmlError(`"${id}" is not an EISA ID`);
  const c = (i: number) => id.charCodeAt(i) - 0x40;
  const vendor = (c(0) << 10) | (c(1) << 5) | c(2);
  const product = parseInt(id.slice(3), 16);
  // The vendor half is big-endian, then the product's two bytes, also big-endian.
  const bytes = [vendor >> 8, vendor & 0xff, product >> 8, product & 0xff];
  return int((bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0);
}

/** Name(path, value). */
export function name(path: string, value: Aml): Aml {
  return cat(Uint8Array.of(NAME_OP), nameString(path), value);
}

/** Scope(path) { terms }. */
export function scope(path: string, terms: readonly Aml[]): Aml {
  return cat(Uint8Array.of(SCOPE_OP), withPkgLength(cat(nameString(path), terms)));
}

/** Device(path) { terms }. */
export function device(path: string, terms: readonly Aml[]): Aml {
  return cat(
    Uint8Array.of(EXT_OP_PREFIX, DEVICE_OP),
    withPkgLength(cat(nameString(path), terms)),
  );
}

/** Method(path, args, NotSerialized) { terms }. */
export function method(path: string, args: number, terms: readonly Aml[]): Aml {
  if (!Number.isInteger(args) || args < 0 || args > 7) throw new AmlError("A method has 0-7 args");
  return cat(
    Uint8Array.of(METHOD_OP),
    withPkgLength(cat(nameString(path), Uint8Array.of(args), terms)),
  );
}

/** Return(value). */
export function ret(value: Aml): Aml {
  return cat(Uint8Array.of(RETURN_OP), value);
}

/** Package() { elements } (at most 255 elements). */
export function pkg(elements: readonly Aml[]): Aml {
  if (elements.length > 255) throw new AmlError("A Package holds at most 255 elements");
  return cat(
    Uint8Array.of(PACKAGE_OP),
    withPkgLength(cat(Uint8Array.of(elements.length), elements)),
  );
}

/** Buffer() { bytes }. */
export function buffer(bytes: Uint8Array): Aml {
  return cat(Uint8Array.of(BUFFER_OP), withPkgLength(cat(int(bytes.length), bytes)));
}

/** ResourceTemplate() { descriptors }: a buffer of descriptors and the end tag. */
export function resourceTemplate(descriptors: readonly Uint8Array[]): Aml {
  // End tag with checksum 0, which means "the checksum is not checked" (6.4.2.9).
  return buffer(cat(descriptors, Uint8Array.of(0x79, 0)));
}

/** IO(Decode16, min, max = min, alignment 1, length): a fixed I/O port range. */
export function ioPort(base: number, length: number): Uint8Array {
  return Uint8Array.of(0x47, 1, base & 0xff, base >> 8, base & 0xff, base >> 8, 1, length);
}

/** IRQNoFlags() { irq }: an edge-triggered, active-high ISA interrupt. */
export function irqNoFlags(irq: number): Uint8Array {
  const mask = 1 << irq;
  return Uint8Array.of(0x22, mask & 0xff, mask >> 8);
}

/** WordBusNumber(ResourceProducer, ...) for buses `min..max`. */
export function wordBusNumber(min: number, max: number): Uint8Array {
  return wordAddress(2, 0x0c, 0, min, max);
}

/** WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, min, max). */
export function wordIo(min: number, max: number): Uint8Array {
  return wordAddress(1, 0x0c, 3, min, max);
}

/** DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite). */
export function dwordMemory(min: number, max: number): Uint8Array {
  const out = new Uint8Array(26);
  const view = new DataView(out.buffer);
  out.set([0x87, 23, 0, 0, 0x0c, 0x01]); // memory, producer + fixed, RW non-cacheable
  view.setUint32(10, min, true);
  view.setUint32(14, max, true);
  view.setUint32(22, max - min + 1, true);
  return out;
}

/** QWordMemory, like dwordMemory, for a window above 4 GiB. */
export function qwordMemory(min: bigint, max: bigint): Uint8Array {
  const out = new Uint8Array(46);
  const view = new DataView(out.buffer);
  out.set([0x8a, 43, 0, 0, 0x0c, 0x01]);
  view.setBigUint64(14, min, true);
  view.setBigUint64(22, max, true);
  view.setBigUint64(38, max - min + 1n, true);
  return out;
}

function wordAddress(type: number, flags: number, typeFlags: number, min: number, max: number) {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  out.set([0x88, 13, 0, type, flags, typeFlags]);
  view.setUint16(8, min, true);
  view.setUint16(10, max, true);
  view.setUint16(14, max - min + 1, true);
  return out;
}
