import assert from "node:assert/strict";
import { kvmTest } from "../tests/kvm_support.ts";
import { Kvm } from "./kvm.ts";
import { KvmMsiController } from "./msi.ts";
import { MSI_FIRST_GSI } from "./layout.ts";

kvmTest("KvmMsiController gives each vector a GSI above the IOAPIC and routes its message", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  vm.createIrqchip();
  const msi = new KvmMsiController(vm);
  const first = msi.allocate();
  const second = msi.allocate();
  first.setMessage({ addressLo: 0xfee00000, addressHi: 0, data: 0x41 });
  second.setMessage({ addressLo: 0xfee01000, addressHi: 0, data: 0x42 });
  const msiRoutes = () => msi.routes().filter((r) => r.kind === "msi");
  assert.deepEqual(msiRoutes().map((r) => r.gsi), [MSI_FIRST_GSI, MSI_FIRST_GSI + 1]);
  first.setMessage(undefined);
  assert.deepEqual(msiRoutes().map((r) => r.kind === "msi" && r.data), [0x42]);
  first.trigger(); // an unrouted vector fires nowhere, and must not fail
  first.release();
  const third = msi.allocate();
  third.setMessage({ addressLo: 0xfee00000, addressHi: 0, data: 0x43 });
  assert.deepEqual(msiRoutes().map((r) => r.gsi).sort(), [MSI_FIRST_GSI, MSI_FIRST_GSI + 1]);
  second.release();
  third.release();
});
