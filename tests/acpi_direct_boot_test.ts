/**
 * ACPI on a direct boot, seen from inside the guest: guests/acpi.c finds the RSDP the
 * PVH start info hands it, checks every table's checksum, counts the MADT's CPUs, reads
 * the FADT's registers and powers the machine off through PM1a_CNT (S5).
 */

import assert from "node:assert/strict";
import { denovisor, guest } from "./cli_support.ts";
import { kvmTest } from "./kvm_support.ts";

kvmTest(
  "a direct boot's guest finds the ACPI tables, its 3 CPUs, and powers off through S5",
  async () => {
    const r = await denovisor(["run", "--kernel", guest("acpi"), "--cpus", "3"], {
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /acpi: rsdp from the start info at 0xe0000/);
    for (const table of ["XSDT", "FACP", "APIC", "DSDT"]) {
      assert.match(r.stdout, new RegExp(`acpi: ${table} at 0x[0-9a-f]+, \\d+ bytes, checksum ok`));
    }
    assert.doesNotMatch(r.stdout, /BAD/);
    assert.match(r.stdout, /acpi: MADT lists 3 enabled CPUs/);
    assert.match(
      r.stdout,
      /SCI on IRQ 9, PM1a_CNT at 0x604, PM timer at 0x608, reset register 0xcf9/,
    );
    assert.match(r.stdout, /acpi: entering S5/);
    assert.doesNotMatch(r.stdout, /still running after S5/, "S5 ended the VM");
  },
  90_000,
);
