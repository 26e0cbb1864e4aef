import assert from "node:assert/strict";
import { Bus } from "../../core/bus.ts";
import { GuestMemory } from "../../core/guest_memory.ts";
import { MPTABLE_START } from "../../core/layout.ts";
import {
  DIRECT_BOOT_RSDP_ADDRESS,
  DIRECT_BOOT_TABLES_ADDRESS,
  DirectBootAcpi,
} from "./direct_boot_acpi.ts";
import { byteSum } from "./acpi/tables.ts";
import { TableLoaderError } from "./acpi/table_loader.ts";

function machine(cpus: number) {
  const events: string[] = [];
  const acpi = new DirectBootAcpi({
    cpus,
    setIrqLine: (gsi, high) => events.push(`irq ${gsi} ${high}`),
    onReset: () => events.push("reset"),
    onPowerOff: () => events.push("poweroff"),
  });
  return { acpi, events };
}

/** Each table an OS finds from the RSDP, by signature (checksums checked on the way). */
function walk(mem: GuestMemory, rsdp: number): Map<string, { address: number; bytes: Uint8Array }> {
  assert.equal(new TextDecoder().decode(mem.read(rsdp, 8)), "RSD PTR ");
  assert.equal(byteSum(mem.read(rsdp, 20)), 0, "RSDP checksum");
  assert.equal(byteSum(mem.read(rsdp, 36)), 0, "RSDP extended checksum");
  const found = new Map<string, { address: number; bytes: Uint8Array }>();
  const table = (address: number) => {
    const bytes = mem.read(address, mem.readU32(address + 4));
    assert.equal(byteSum(bytes), 0, `checksum of the table at 0x${address.toString(16)}`);
    found.set(new TextDecoder().decode(bytes.subarray(0, 4)), { address, bytes });
    return bytes;
  };
  const xsdt = table(Number(mem.readU64(rsdp + 24)));
  for (let at = 36; at < xsdt.length; at += 8) {
    table(Number(new DataView(xsdt.buffer, xsdt.byteOffset).getBigUint64(at, true)));
  }
  const fadt = found.get("FACP")!.bytes;
  table(new DataView(fadt.buffer, fadt.byteOffset).getUint32(40, true));
  return found;
}

Deno.test("a direct boot's tables sit in the BIOS area below the MP table, RSDP at 0xE0000", () => {
  const { acpi } = machine(3);
  const mem = GuestMemory.ofSize(2 << 20);
  const rsdp = acpi.writeTables(mem);
  assert.equal(rsdp, DIRECT_BOOT_RSDP_ADDRESS);
  const tables = walk(mem, rsdp);
  assert.deepEqual([...tables.keys()].sort(), ["APIC", "DSDT", "FACP", "XSDT"]);
  for (const { address, bytes } of tables.values()) {
    assert.ok(address >= DIRECT_BOOT_TABLES_ADDRESS && address + bytes.length <= MPTABLE_START);
  }
  const madt = tables.get("APIC")!.bytes;
  let lapics = 0;
  for (let at = 44; at < madt.length; at += madt[at + 1]) if (madt[at] === 0) lapics++;
  assert.equal(lapics, 3, "one local APIC per vCPU");
  const fadt = new DataView(tables.get("FACP")!.bytes.buffer, tables.get("FACP")!.bytes.byteOffset);
  assert.equal(fadt.getUint32(56, true), 0x600, "PM1a_EVT_BLK");
  assert.equal(fadt.getUint16(46, true), 9, "SCI_INT");
  assert.equal(Number(fadt.getBigUint64(120, true)), 0xcf9, "RESET_REG address");
});

Deno.test("the FADT's hardware answers: S5 powers off, 0xcf9 resets, the button waits for ACPI", () => {
  const { acpi, events } = machine(1);
  const pio = new Bus();
  acpi.attach(pio);
  assert.equal(acpi.pressPowerButton(), false, "not pressed before the OS enabled the event");
  const pm = acpi.pm;
  pm.write(2, Uint8Array.of(0x00, 0x01)); // PM1_EN.PWRBTN_EN, as an ACPI OS sets it
  assert.equal(acpi.pressPowerButton(), true);
  assert.deepEqual(events, ["irq 9 true"], "the SCI rises");
  pm.write(4, Uint8Array.of(0x01, 0x20)); // SLP_TYP 0 (S5) | SLP_EN
  assert.equal(events.at(-1), "poweroff");
  const ports = acpi.configPorts({ read: () => {}, write: () => {} });
  ports.write(1, Uint8Array.of(0x06));
  assert.equal(events.at(-1), "reset");
});

Deno.test("tables too large for the BIOS area are refused with the vCPU count", () => {
  assert.throws(
    () => machine(4000).acpi.writeTables(GuestMemory.ofSize(2 << 20)),
    (e: unknown) => e instanceof TableLoaderError && /4000 vCPUs/.test(e.message),
  );
});

function hasIasl(): boolean {
  try {
    new Deno.Command("iasl", { args: ["-v"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "iasl -d reads a direct boot's DSDT: the PCI root and the ISA devices at the root",
  ignore: !hasIasl(),
  async fn() {
    const { acpi } = machine(2);
    const mem = GuestMemory.ofSize(2 << 20);
    const dsdt = walk(mem, acpi.writeTables(mem)).get("DSDT")!.bytes;
    const dir = await Deno.makeTempDir({ prefix: "direct-acpi-" });
    try {
      await Deno.writeFile(`${dir}/dsdt.dat`, dsdt);
      const out = await new Deno.Command("iasl", { args: ["-d", "dsdt.dat"], cwd: dir }).output();
      const log = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, log);
      assert.doesNotMatch(log, /\bError\b|Invalid/i, log);
      const text = await Deno.readTextFile(`${dir}/dsdt.dsl`);
      assert.match(text, /Device \(PCI0\)/);
      assert.match(text, /EisaId \("PNP0B00"\)/, "the RTC");
      assert.match(text, /_S5/);
      assert.doesNotMatch(text, /Device \(ISA\)/, "no ISA bridge on a direct boot");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
