/**
 * `reboot` asks the guest (POST /vm/ctrl-alt-del): a guest that answers Ctrl-Alt-Del with
 * a reset (domain.c with cad=reset, as Linux's init does) boots again under onReboot
 * restart; unlike after a shutdown request, that reset is a reboot, not a power-off.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { withVmm } from "./vmm_support.ts";
import { guest } from "./cli_support.ts";

const UP = /domain guest up/;

kvmTest(
  "a reboot request reaches the guest as Ctrl-Alt-Del and its reset boots it again",
  async () => {
    await withVmm({
      onReboot: "restart",
      boot: { kind: "linux", kernel: guest("domain"), cmdline: "cad=reset" },
    }, async (vmm) => {
      await vmm.waitLog(UP);
      await vmm.client.requestReboot();
      await vmm.waitLog(/ctrl-alt-del: rebooting/);
      await vmm.waitLog(/boot 2:/);
      const status = await vmm.client.status();
      assert.equal(status.boots, 2);
      assert.equal(status.state, "running");
      assert.equal(status.pid, vmm.child.pid);
      assert.match(vmm.log(), /reboot requested: Ctrl-Alt-Del sent to the guest/);
    });
  },
  120_000,
);
