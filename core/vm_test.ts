import assert from "node:assert/strict";
import { Vm } from "./vm.ts";
import {
  KVM_IRQCHIP_IOAPIC,
  KVM_IRQCHIP_PIC_MASTER,
  KVM_IRQCHIP_PIC_SLAVE,
} from "../ffi/kvm/vm_structs.ts";

Deno.test("Vm.defaultRoutes() wires IRQ0 to IOAPIC pin 2, as the MP table says", () => {
  const routes = Vm.defaultRoutes();
  const ioapic = routes.filter((r) => r.kind === "irqchip" && r.irqchip === KVM_IRQCHIP_IOAPIC);
  const pinOf = (gsi: number) => {
    const route = ioapic.find((r) => r.gsi === gsi);
    return route?.kind === "irqchip" ? route.pin : undefined;
  };
  assert.equal(pinOf(0), 2);
  assert.equal(pinOf(2), undefined, "the cascade has no IOAPIC route");
  assert.equal(pinOf(4), 4);
  assert.equal(ioapic.length, 23);
  const pic = routes.filter((r) => r.kind === "irqchip" && r.irqchip !== KVM_IRQCHIP_IOAPIC);
  assert.equal(pic.length, 15);
  const irq9 = pic.find((r) => r.gsi === 9);
  assert.deepEqual(irq9, { gsi: 9, kind: "irqchip", irqchip: KVM_IRQCHIP_PIC_SLAVE, pin: 1 });
  const irq4 = pic.find((r) => r.gsi === 4);
  assert.deepEqual(irq4, { gsi: 4, kind: "irqchip", irqchip: KVM_IRQCHIP_PIC_MASTER, pin: 4 });
});
