/**
 * The independent check of the linker script: Debian's SeaBIOS itself runs our
 * `etc/table-loader` (under QEMU's TCG emulator, so no KVM is needed; QEMU's own ACPI is
 * off and our three files are given with -fw_cfg), then the test reads guest RAM back
 * through QEMU's monitor and walks the tables from the RSDP as an OS would.
 */

import assert from "node:assert/strict";
import { pciIntxGsi } from "../../pci/pci_bus.ts";
import { ACPI_RSDP_FILE, ACPI_TABLES_FILE, buildAcpi, TABLE_LOADER_FILE } from "./acpi_tables.ts";
import { byteSum } from "./tables.ts";

const SEABIOS = "/usr/share/seabios/bios.bin";
const QEMU = "qemu-system-x86_64";
const RAM = 64 << 20;

function available(): boolean {
  try {
    Deno.statSync(SEABIOS);
    new Deno.Command(QEMU, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

/** Sends one monitor command and waits a little for it to run. */
async function monitor(path: string, command: string): Promise<void> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(`${command}\n`));
    await new Promise((resolve) => setTimeout(resolve, 500));
  } finally {
    conn.close();
  }
}

/** The RSDP's address in the BIOS area, or undefined before SeaBIOS placed it. */
function findRsdp(memory: Uint8Array): number | undefined {
  for (let at = 0xe0000; at < 0x100000; at += 16) {
    if (new TextDecoder().decode(memory.subarray(at, at + 8)) === "RSD PTR ") return at;
  }
  return undefined;
}

Deno.test({
  name: "SeaBIOS runs our table-loader and leaves linked, checksummed tables in guest RAM",
  ignore: !available(),
  async fn() {
    const blobs = buildAcpi({
      cpus: 2,
      pciMmio: { start: 0xc000_0000, size: 0x1000_0000 },
      intxGsi: pciIntxGsi,
      isaBridgeSlot: 1,
      pm: { base: 0x600, sciIrq: 9, resetPort: 0xcf9, resetValue: 0x06 },
    });
    const dir = await Deno.makeTempDir({ prefix: "seabios-acpi-" });
    const files: [string, Uint8Array][] = [
      [ACPI_TABLES_FILE, blobs.tables],
      [ACPI_RSDP_FILE, blobs.rsdp],
      [TABLE_LOADER_FILE, blobs.loader],
    ];
    const args = [
      "-machine",
      "pc,acpi=off",
      "-accel",
      "tcg",
      "-m",
      `${RAM >> 20}`,
      "-smp",
      "2",
      "-display",
      "none",
      "-nodefaults",
      "-serial",
      "null",
      "-bios",
      SEABIOS,
      "-monitor",
      `unix:${dir}/monitor.sock,server=on,wait=off`,
    ]; // deno-fmt-ignore
    for (const [name, data] of files) {
      const file = `${dir}/${name.replaceAll("/", "_")}`;
      await Deno.writeFile(file, data);
      args.push("-fw_cfg", `name=${name},file=${file}`);
    }
    const qemu = new Deno.Command(QEMU, { args, stdout: "null", stderr: "piped" }).spawn();
    try {
      // POST takes a second or two under TCG; poll generously for a loaded machine.
      let memory: Uint8Array | undefined;
      let rsdp: number | undefined;
      for (let attempt = 0; attempt < 60 && rsdp === undefined; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        try {
          await monitor(`${dir}/monitor.sock`, `pmemsave 0 ${RAM} "${dir}/ram.bin"`);
          memory = await Deno.readFile(`${dir}/ram.bin`);
        } catch {
          continue; // the monitor is not up yet, or the dump is not written yet
        }
        if (memory.length === RAM) rsdp = findRsdp(memory);
      }
      assert.ok(memory !== undefined && rsdp !== undefined, "SeaBIOS never installed our RSDP");
      const view = new DataView(memory.buffer);
      const text = (at: number, n: number) => new TextDecoder().decode(memory.subarray(at, at + n));
      const table = (at: number) => {
        const length = view.getUint32(at + 4, true);
        assert.equal(byteSum(memory.subarray(at, at + length)), 0, `${text(at, 4)} checksum`);
        return { signature: text(at, 4), length };
      };
      assert.equal(text(rsdp + 9, 6), "DENOVI", "our RSDP, not SeaBIOS's");
      assert.equal(byteSum(memory.subarray(rsdp, rsdp + 20)), 0);
      assert.equal(byteSum(memory.subarray(rsdp, rsdp + 36)), 0);
      const xsdt = Number(view.getBigUint64(rsdp + 24, true));
      const { length } = table(xsdt);
      const listed = [];
      for (let at = xsdt + 36; at < xsdt + length; at += 8) {
        const address = Number(view.getBigUint64(at, true));
        listed.push(table(address).signature);
        if (text(address, 4) === "FACP") {
          assert.equal(table(view.getUint32(address + 40, true)).signature, "DSDT");
          assert.equal(text(view.getUint32(address + 36, true), 4), "FACS");
        }
      }
      assert.deepEqual(listed, ["FACP", "APIC"]);
      assert.deepEqual(
        [...memory.subarray(view.getUint32(rsdp + 16, true), view.getUint32(rsdp + 16, true) + 4)],
        [...new TextEncoder().encode("RSDT")],
      );
    } finally {
      qemu.kill("SIGKILL");
      await qemu.status;
      await qemu.stderr.cancel();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
