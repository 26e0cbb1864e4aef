import assert from "node:assert/strict";
import { GuestMemory } from "../../../core/guest_memory.ts";
import { pciIntxGsi } from "../../pci/pci_bus.ts";
import { FwCfg } from "../fw_cfg.ts";
import {
  ACPI_RSDP_FILE,
  ACPI_TABLES_FILE,
  type AcpiOptions,
  buildAcpi,
  installAcpiFiles,
  placeAcpi,
  TABLE_LOADER_FILE,
} from "./acpi_tables.ts";
import { eisaId, int, nameString, withPkgLength } from "./aml.ts";
import { byteSum } from "./tables.ts";
import { parseTableLoader, runTableLoader, TableLoader, ZONE_FSEG } from "./table_loader.ts";

const OPTIONS: AcpiOptions = {
  cpus: 4,
  pciMmio: { start: 0xc000_0000, size: 0x1000_0000 },
  intxGsi: pciIntxGsi,
  isaBridgeSlot: 1,
  pm: { base: 0x600, sciIrq: 9, resetPort: 0xcf9, resetValue: 0x06 },
};

function hasIasl(): boolean {
  try {
    new Deno.Command("iasl", { args: ["-v"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

/** Runs the loader into guest RAM and returns each table by signature, as an OS finds them. */
function tablesInMemory(): {
  mem: GuestMemory;
  rsdpAddress: number;
  tables: Map<string, Uint8Array>;
} {
  const mem = GuestMemory.ofSize(2 << 20);
  const rsdpAddress = placeAcpi(mem, buildAcpi(OPTIONS), {
    tablesAddress: 0x10_0000,
    rsdpAddress: 0xf_0000,
  });
  const tables = new Map<string, Uint8Array>();
  const header = (address: number) => mem.read(address, mem.readU32(address + 4));
  const xsdtAddress = Number(mem.readU64(rsdpAddress + 24));
  const xsdt = header(xsdtAddress);
  tables.set("XSDT", xsdt);
  tables.set("RSDT", header(mem.readU32(rsdpAddress + 16)));
  for (let at = 36; at < xsdt.length; at += 8) {
    const address = Number(new DataView(xsdt.buffer).getBigUint64(at, true));
    const table = header(address);
    tables.set(new TextDecoder().decode(table.subarray(0, 4)), table);
  }
  const fadt = new DataView(tables.get("FACP")!.buffer);
  assert.equal(Number(fadt.getBigUint64(140, true)), fadt.getUint32(40, true), "X_DSDT = DSDT");
  tables.set("DSDT", header(fadt.getUint32(40, true)));
  tables.set("FACS", mem.read(fadt.getUint32(36, true), 64));
  return { mem, rsdpAddress, tables };
}

Deno.test("AML encodes package lengths, names, integers and EISA IDs as the spec says", () => {
  assert.deepEqual([...withPkgLength(new Uint8Array(10))].slice(0, 1), [11]);
  // 100 body bytes: two length bytes, total 102 = 0x66 -> 0x46 0x06.
  assert.deepEqual([...withPkgLength(new Uint8Array(100))].slice(0, 2), [0x46, 0x06]);
  const long = withPkgLength(new Uint8Array(5000)); // 5003 = 0x138b -> 0x8b 0x38 0x01
  assert.deepEqual([...long.subarray(0, 3)], [0x8b, 0x38, 0x01]);
  assert.deepEqual([...nameString("\\_SB.PCI0")], [
    0x5c,
    0x2e,
    ...new TextEncoder().encode("_SB_PCI0"),
  ]);
  assert.deepEqual([...nameString("ISA")], [...new TextEncoder().encode("ISA_")]);
  assert.deepEqual([...int(0x1234)], [0x0b, 0x34, 0x12]);
  assert.deepEqual([...eisaId("PNP0A03")], [0x0c, 0x41, 0xd0, 0x0a, 0x03]);
  assert.throws(() => nameString("1ABC"), /name segment/);
});

Deno.test("linked tables have valid checksums and the RSDP points at the RSDT and XSDT", () => {
  const { mem, rsdpAddress, tables } = tablesInMemory();
  assert.equal(rsdpAddress, 0xf_0000);
  assert.equal(new TextDecoder().decode(mem.read(rsdpAddress, 8)), "RSD PTR ");
  assert.equal(byteSum(mem.read(rsdpAddress, 20)), 0, "RSDP checksum");
  assert.equal(byteSum(mem.read(rsdpAddress, 36)), 0, "RSDP extended checksum");
  for (const signature of ["DSDT", "FACP", "APIC", "RSDT", "XSDT"]) {
    assert.equal(byteSum(tables.get(signature)!), 0, `${signature} checksum`);
  }
  assert.equal(new TextDecoder().decode(tables.get("FACS")!.subarray(0, 4)), "FACS");
  const madt = tables.get("APIC")!;
  const lapics = [];
  for (let at = 44; at < madt.length; at += madt[at + 1]) {
    if (madt[at] === 0) lapics.push(madt[at + 3]);
  }
  assert.deepEqual(lapics, [0, 1, 2, 3]);
});

Deno.test("SeaBIOS and the VMM get the same loader: fw_cfg files match the blobs", () => {
  const blobs = buildAcpi(OPTIONS);
  const fwCfg = new FwCfg(GuestMemory.ofSize(4096));
  installAcpiFiles(fwCfg, blobs);
  const commands = parseTableLoader(fwCfg.file(TABLE_LOADER_FILE)!);
  assert.deepEqual(commands.slice(0, 2).map((c) => c.kind === "allocate" && c.file), [
    ACPI_RSDP_FILE,
    ACPI_TABLES_FILE,
  ]);
  // Every pointer and checksum stays inside the file it names.
  const sizes = new Map([[ACPI_TABLES_FILE, blobs.tables.length], [
    ACPI_RSDP_FILE,
    blobs.rsdp.length,
  ]]);
  for (const c of commands) {
    if (c.kind === "pointer") assert.ok(c.offset + c.size <= sizes.get(c.dest)!);
    if (c.kind === "checksum") assert.ok(c.start + c.length <= sizes.get(c.file)!);
  }
});

Deno.test("the loader refuses commands that do not fit their files", () => {
  const files = new Map([["a", new Uint8Array(8)]]);
  const place = () => 0x1000;
  const bad = new TableLoader().allocate("a", 8, ZONE_FSEG).addPointer("a", "a", 6, 4).bytes();
  assert.throws(() => runTableLoader(bad, files, place), /does not fit a/);
  const early = new TableLoader().addChecksum("a", 0, 0, 8).bytes();
  assert.throws(() => runTableLoader(early, files, place), /before it is allocated/);
  const missing = new TableLoader().allocate("b", 8, ZONE_FSEG).bytes();
  assert.throws(() => runTableLoader(missing, files, place), /no file named b/);
  const range = new TableLoader().allocate("a", 8, ZONE_FSEG).addChecksum("a", 0, 4, 8).bytes();
  assert.throws(() => runTableLoader(range, files, place), /outside the file/);
});

Deno.test({
  name: "iasl -d disassembles every table without errors and finds the devices",
  ignore: !hasIasl(),
  async fn() {
    const { tables } = tablesInMemory();
    const dir = await Deno.makeTempDir({ prefix: "acpi-" });
    try {
      const text = new Map<string, string>();
      for (const [signature, table] of tables) {
        const file = `${dir}/${signature.toLowerCase()}.dat`;
        await Deno.writeFile(file, table);
        const out = await new Deno.Command("iasl", { args: ["-d", file], cwd: dir }).output();
        const log = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, `iasl -d ${signature}: ${log}`);
        assert.doesNotMatch(log, /\bError\b|Invalid/i, `${signature}: ${log}`);
        text.set(signature, await Deno.readTextFile(file.replace(/\.dat$/, ".dsl")));
      }
      const dsdt = text.get("DSDT")!;
      assert.match(dsdt, /Device \(PCI0\)/);
      assert.match(dsdt, /EisaId \("PNP0A03"\)/);
      assert.match(dsdt, /Device \(COM1\)/);
      assert.match(dsdt, /IO \(Decode16,\s*0x03F8,\s*\/\/ Range Minimum/);
      assert.match(dsdt, /Name \(_S5, Package \(0x04\)/);
      assert.match(dsdt, /Device \(C003\)/);
      assert.match(dsdt, /0x0001FFFF,\s*Zero,\s*Zero,\s*0x15/); // slot 1 INTA -> GSI 21
      const madt = text.get("APIC")!;
      assert.equal(madt.match(/Subtable Type : 00 \[Processor Local APIC\]/g)?.length, 4);
      assert.match(madt, /I\/O APIC/);
      assert.match(madt, /Interrupt Source Override/);
      const fadt = text.get("FACP")!;
      assert.match(fadt, /SCI Interrupt : 0009/);
      assert.match(fadt, /PM1A Event Block Address : 00000600/);
      assert.match(fadt, /Reset Register Supported \(V2\) : 1/);
      assert.doesNotMatch(fadt, /Warning/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
