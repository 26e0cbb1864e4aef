import assert from "node:assert/strict";
import type { BiosAreaAccess } from "../../core/bios_area.ts";
import { Bus } from "../../core/bus.ts";
import { PciConfigMechanism } from "../pci/config_mechanism.ts";
import { PciBus } from "../pci/pci_bus.ts";
import { conf1Slot, FakeMsiController } from "../pci/testing/fakes.ts";
import { AcpiPm, PM1_PWRBTN, PM_TIMER_HZ } from "./acpi_pm.ts";
import { I440FX_PAM0, I440fxHostBridge } from "./i440fx.ts";
import { Piix3IsaBridge } from "./piix3.ts";
import { ResetControl, withResetControl } from "./reset_control.ts";

function platform(preloaded: boolean) {
  const changes: [number, number, BiosAreaAccess][] = [];
  const bridge = new I440fxHostBridge(
    { setAccess: (start, size, access) => changes.push([start, size, access]) },
    { preloaded },
  );
  const pci = new PciBus({
    mmio: new Bus(),
    msi: new FakeMsiController(),
    setIrqLevel() {},
    hostBridge: bridge,
  });
  const isa = new Piix3IsaBridge();
  assert.equal(pci.add(isa), 1);
  const resets: number[] = [];
  const reset = new ResetControl(() => resets.push(1));
  const ports = withResetControl(new PciConfigMechanism(pci), reset);
  return {
    bridge,
    isa,
    ports,
    changes,
    resets,
    host: conf1Slot(ports, 0),
    piix: conf1Slot(ports, 1),
  };
}

Deno.test("SeaBIOS finds an i440FX with QEMU's subsystem ID and a PIIX3 in slot 1", () => {
  const { host, piix } = platform(true);
  assert.equal(host.read32(0x00), 0x1237_8086);
  assert.equal(host.read16(0x2c), 0x1af4, "qemu_detect() checks the subsystem vendor");
  assert.equal(host.read16(0x2e), 0x1100);
  assert.equal(piix.read32(0x00), 0x7000_8086);
  assert.equal(piix.read32(0x08) >>> 8, 0x060100, "ISA bridge class");
});

Deno.test("make_bios_writable() on preloaded RAM: PAM0 says RAM present, writes go to the VMM", () => {
  const { host, changes, bridge } = platform(true);
  assert.equal(host.read8(I440FX_PAM0) & 0x10, 0x10, "RAM already backs the F segment");
  // shadow.c reads two dwords around PAM0, sets 0x33 in PAM1-6 and 0x30 in PAM0, writes back.
  const lo = host.read32(0x58);
  const hi = host.read32(0x5c);
  host.write32(0x58, lo);
  host.write32(0x5c, hi);
  assert.deepEqual(changes, [], "nothing changed: no remapping");
  // make_bios_readonly(): the F segment becomes read-only RAM, PAM1 too.
  host.write8(I440FX_PAM0, 0x10);
  host.write8(I440FX_PAM0 + 1, 0x11);
  assert.deepEqual(changes, [
    [0xf0000, 0x10000, "read-only"],
    [0xc0000, 0x4000, "read-only"],
    [0xc4000, 0x4000, "read-only"],
  ]);
  assert.deepEqual([...bridge.pam], [0x10, 0x11, 0x33, 0x33, 0x33, 0x33, 0x33]);
});

Deno.test("PAM from power-on reads ROM and reserved bits do not stick", () => {
  const { host, changes } = platform(false);
  assert.equal(host.read8(I440FX_PAM0), 0);
  host.write8(I440FX_PAM0 + 6, 0xff);
  assert.equal(host.read8(I440FX_PAM0 + 6), 0x33);
  assert.deepEqual(changes, [[0xe8000, 0x4000, "read-write"], [0xec000, 0x4000, "read-write"]]);
});

Deno.test("piix_isa_bridge_setup() programs PIRQA-D to IRQs 10, 10, 11, 11", () => {
  const { piix, isa } = platform(true);
  assert.equal(isa.pirqRoute(0), undefined, "routing disabled at reset");
  [10, 10, 11, 11].forEach((irq, i) => piix.write8(0x60 + i, irq));
  assert.equal(piix.read32(0x60), 0x0b0b_0a0a);
  assert.deepEqual([0, 1, 2, 3].map((i) => isa.pirqRoute(i)), [10, 10, 11, 11]);
  piix.write8(0x61, 0x80 | 10);
  assert.equal(isa.pirqRoute(1), undefined);
  piix.write8(0x62, 2); // IRQ 2 is the cascade: not routable
  assert.equal(isa.pirqRoute(2), undefined);
  const restored = new Piix3IsaBridge();
  restored.restore(JSON.parse(JSON.stringify(isa.save())));
  assert.equal(restored.pirqRoute(0), 10);
  assert.throws(() => restored.restore({ version: 1, pirq: [1, 2], tom: 0 }), /state\.pirq/);
});

Deno.test("a byte write of 6 to 0xcf9 resets; dword config cycles at 0xcf8 still work", () => {
  const { ports, resets, host } = platform(true);
  ports.write(1, Uint8Array.of(0x02));
  assert.equal(resets.length, 0, "SYS_RST alone is no reset");
  ports.write(1, Uint8Array.of(0x06));
  assert.equal(resets.length, 1);
  const data = new Uint8Array(1);
  ports.read(1, data);
  assert.equal(data[0], 0x02, "RST_CPU does not stick");
  assert.equal(host.read32(0x00), 0x1237_8086);
});

Deno.test("the power button raises the SCI once enabled; S5 in PM1_CNT powers off", () => {
  const levels: boolean[] = [];
  let powerOffs = 0;
  let now = 0n;
  const pm = new AcpiPm({
    sci: { setLevel: (high) => levels.push(high) },
    onPowerOff: () => powerOffs++,
    now: () => now,
  });
  pm.pressPowerButton();
  assert.deepEqual(levels, [], "not enabled: status only");
  const word = (offset: number) => {
    const data = new Uint8Array(2);
    pm.read(offset, data);
    return data[0] | (data[1] << 8);
  };
  assert.equal(word(0) & PM1_PWRBTN, PM1_PWRBTN);
  assert.equal(word(4) & 1, 1, "SCI_EN: always in ACPI mode");
  pm.write(2, Uint8Array.of(0x00, 0x01)); // PM1_EN.PWRBTN_EN
  assert.deepEqual(levels, [true]);
  pm.write(0, Uint8Array.of(0x00, 0x01)); // write 1 to clear PWRBTN_STS
  assert.deepEqual(levels, [true, false]);
  // Linux's S5: SLP_TYP first, then SLP_TYP | SLP_EN.
  pm.write(4, Uint8Array.of(0x01, 0x00));
  assert.equal(powerOffs, 0);
  pm.write(4, Uint8Array.of(0x01, 0x20));
  assert.equal(powerOffs, 1);
  // The timer counts at 3.579545 MHz and wraps at 24 bits.
  now = 1_000_000_000n;
  const timer = new Uint8Array(4);
  pm.read(8, timer);
  assert.equal(new DataView(timer.buffer).getUint32(0, true), PM_TIMER_HZ & 0xff_ffff);
  const state = JSON.parse(JSON.stringify(pm.save()));
  const other = new AcpiPm({ sci: { setLevel() {} }, onPowerOff() {}, now: () => 5n });
  other.restore(state);
  assert.equal(other.timer, state.timer, "the timer continues where it stood");
  assert.throws(() => other.restore({ ...state, pm1Enable: 0x10000 }), /pm1Enable/);
});
