/*
 * cpuid: prints CPUID leaves 0, 1, 0x40000000 (hypervisor signature) and 0x40000001 on
 * the BSP, then leaf 1's initial APIC ID on every AP, and exits 0.
 */
#include "runtime/rt.h"

static void show_leaf(const char *who, u32 leaf) {
  u32 r[4];
  cpuid(leaf, 0, r);
  printf("%s: leaf 0x%08x eax=%08x ebx=%08x ecx=%08x edx=%08x\n", who, leaf, r[0], r[1], r[2],
         r[3]);
}

static void on_ap(u32 cpu_index, u8 apic_id) {
  u32 r[4];
  cpuid(1, 0, r);
  printf("cpu %u: leaf 0x00000001 initial apic id %u (lapic id %u) ecx=%08x edx=%08x\n",
         cpu_index, r[1] >> 24, apic_id, r[2], r[3]);
}

int main(void) {
  u32 r[4];
  cpuid(0, 0, r);
  char vendor[13];
  memcpy(vendor, &r[1], 4);
  memcpy(vendor + 4, &r[3], 4);
  memcpy(vendor + 8, &r[2], 4);
  vendor[12] = '\0';
  show_leaf("cpu 0", 0);
  printf("cpu 0: vendor \"%s\", max basic leaf 0x%x\n", vendor, r[0]);
  show_leaf("cpu 0", 1);
  cpuid(1, 0, r);
  printf("cpu 0: initial apic id %u, family %u model %u stepping %u\n", r[1] >> 24,
         ((r[0] >> 8) & 0xf) + ((r[0] >> 20) & 0xff), ((r[0] >> 4) & 0xf) | ((r[0] >> 12) & 0xf0),
         r[0] & 0xf);
  show_leaf("cpu 0", 0x40000000);
  cpuid(0x40000000, 0, r);
  char signature[13];
  memcpy(signature, &r[1], 4);
  memcpy(signature + 4, &r[2], 4);
  memcpy(signature + 8, &r[3], 4);
  signature[12] = '\0';
  for (int i = 0; i < 12; i++) {
    if (signature[i] && (signature[i] < 0x20 || signature[i] > 0x7e)) signature[i] = '.';
  }
  printf("cpu 0: hypervisor signature \"%s\", max hypervisor leaf 0x%x\n", signature, r[0]);
  show_leaf("cpu 0", 0x40000001);
  if (cpus_discover()->count > 1) smp_start_aps(on_ap, true);
  print("cpuid: done\n");
  return 0;
}
