/*
 * acpi: finds the ACPI tables a direct boot gets as an OS does (the RSDP from the PVH
 * start info, else by scanning 0xE0000-0xFFFFF), checks every checksum, prints each table
 * the XSDT lists, the CPUs the MADT lists and the FADT's PM and reset registers, then
 * powers the machine off by writing S5 to PM1a_CNT (the DSDT's _S5 is type 0). If the
 * machine is still running after that, it says so and exits with status 3.
 */
#include "runtime/rt.h"

static u8 sum(const u8 *bytes, u32 length) {
  u8 total = 0;
  for (u32 i = 0; i < length; i++) total += bytes[i];
  return total;
}

static const u8 *find_rsdp(void) {
  const struct hvm_start_info *info = boot_info();
  if (info && info->rsdp_paddr) {
    printf("acpi: rsdp from the start info at 0x%x\n", (u32)info->rsdp_paddr);
    return (const u8 *)info->rsdp_paddr;
  }
  for (u64 at = 0xe0000; at < 0x100000; at += 16) {
    if (memcmp((const void *)at, "RSD PTR ", 8) == 0) {
      printf("acpi: rsdp found by scanning at 0x%x\n", (u32)at);
      return (const u8 *)at;
    }
  }
  return NULL;
}

static u32 u32_at(const u8 *p) { return p[0] | p[1] << 8 | p[2] << 16 | (u32)p[3] << 24; }
static u64 u64_at(const u8 *p) { return u32_at(p) | (u64)u32_at(p + 4) << 32; }

/* A table's header checked: its signature and a zero checksum over its length. */
static bool check_table(const u8 *table) {
  u32 length = u32_at(table + 4);
  bool ok = length >= 36 && sum(table, length) == 0;
  char signature[5];
  memcpy(signature, table, 4);
  signature[4] = '\0';
  printf("acpi: %s at 0x%x, %u bytes, checksum %s\n", signature, (u32)(u64)table, length,
         ok ? "ok" : "BAD");
  return ok;
}

int main(void) {
  const u8 *rsdp = find_rsdp();
  if (!rsdp || memcmp(rsdp, "RSD PTR ", 8) != 0) {
    print("acpi: no RSDP\n");
    return 1;
  }
  if (sum(rsdp, 20) != 0 || rsdp[15] < 2 || sum(rsdp, u32_at(rsdp + 20)) != 0) {
    print("acpi: RSDP checksum BAD\n");
    return 1;
  }
  const u8 *xsdt = (const u8 *)u64_at(rsdp + 24);
  if (memcmp(xsdt, "XSDT", 4) != 0 || !check_table(xsdt)) return 1;
  const u8 *fadt = NULL;
  u32 entries = (u32_at(xsdt + 4) - 36) / 8;
  for (u32 i = 0; i < entries; i++) {
    const u8 *table = (const u8 *)u64_at(xsdt + 36 + 8 * i);
    if (!check_table(table)) return 1;
    if (memcmp(table, "FACP", 4) == 0) fadt = table;
    if (memcmp(table, "APIC", 4) == 0) {
      u32 cpus = 0;
      for (u32 at = 44; at + 2 <= u32_at(table + 4) && table[at + 1] >= 2; at += table[at + 1]) {
        if (table[at] == 0 && (table[at + 4] & 1)) cpus++;
      }
      printf("acpi: MADT lists %u enabled CPUs\n", cpus);
    }
  }
  if (!fadt) {
    print("acpi: no FADT\n");
    return 1;
  }
  const u8 *dsdt = (const u8 *)u64_at(fadt + 140);
  if (memcmp(dsdt, "DSDT", 4) != 0 || !check_table(dsdt)) return 1;
  u32 pm1a_cnt = u32_at(fadt + 64);
  printf("acpi: SCI on IRQ %u, PM1a_CNT at 0x%x, PM timer at 0x%x, reset register 0x%x\n",
         fadt[46] | fadt[47] << 8, pm1a_cnt, u32_at(fadt + 76), (u32)u64_at(fadt + 120));
  print("acpi: entering S5\n");
  outw((u16)pm1a_cnt, (u16)((0 << 10) | (1 << 13))); /* SLP_TYP 0 (_S5), SLP_EN */
  delay_us(100000);
  print("acpi: still running after S5\n");
  return 3;
}
