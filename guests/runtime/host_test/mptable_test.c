/*
 * Host-side test of the runtime's MP-table parser (runtime/cpus.c): builds a
 * Denovisor-style MP table at 0x9fc00 in memory mapped at its guest address, then checks
 * what cpus_discover() finds. Run by guests/test_runtime.sh (needs root for low mmap).
 */
#include <stdio.h>
#include <sys/mman.h>

#include "../rt.h"

u32 rt_start_info_paddr; /* 0: no start info, so no ACPI either */

static u8 sum(const u8 *p, int n) {
  u8 s = 0;
  for (int i = 0; i < n; i++) s += p[i];
  return s;
}

int main(void) {
  void *low = mmap((void *)0x9f000, 0x1000, PROT_READ | PROT_WRITE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void *lapic = mmap((void *)0xfee00000ul, 0x1000, PROT_READ | PROT_WRITE,
                     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (low == MAP_FAILED || lapic == MAP_FAILED) {
    perror("mptable_test: mmap at guest addresses (run as root)");
    return 2;
  }
  *(volatile u32 *)0xfee00020ul = 2u << 24; /* BSP APIC ID 2 */
  u8 *fp = (u8 *)0x9fc00, *h = fp + 16, *e = h + 44;
  memcpy(fp, "_MP_", 4);
  *(u32 *)(fp + 4) = 0x9fc10;
  fp[8] = 1;
  fp[9] = 4;
  memcpy(h, "PCMP", 4);
  h[6] = 4;
  u16 entries = 0;
  u8 cpu_ids[3] = {2, 5, 7};
  for (int i = 0; i < 3; i++, entries++, e += 20) {
    e[0] = 0, e[1] = cpu_ids[i], e[2] = 0x14, e[3] = 1 | (i == 0 ? 2 : 0);
  }
  e[0] = 0, e[1] = 9, e[3] = 0; /* disabled CPU: must be skipped */
  e += 20, entries++;
  e[0] = 1, e[1] = 0, memcpy(e + 2, "ISA   ", 6), e += 8, entries++;
  e[0] = 2, e[1] = 8, e[2] = 0x11, e[3] = 1, *(u32 *)(e + 4) = 0xfec00000, e += 8, entries++;
  e[0] = 3, e[1] = 0, e[4] = 0, e[5] = 0, e[6] = 8, e[7] = 2, e += 8, entries++; /* IRQ0->2 */
  e[0] = 3, e[1] = 0, e[4] = 0, e[5] = 4, e[6] = 8, e[7] = 4, e += 8, entries++;
  e[0] = 4, e[1] = 3, e += 8, entries++;
  *(u16 *)(h + 4) = (u16)(e - h);
  *(u16 *)(h + 34) = entries;
  *(u32 *)(h + 36) = 0xfee00000;
  h[7] = (u8)-sum(h, (int)(e - h));
  fp[10] = (u8)-sum(fp, 16);

  const struct cpu_topology *t = cpus_discover();
  int failures = 0;
#define EXPECT(cond)                                  \
  do {                                                \
    if (!(cond)) {                                    \
      fprintf(stderr, "mptable_test: failed: %s\n", #cond); \
      failures++;                                     \
    }                                                 \
  } while (0)
  EXPECT(strncmp(t->source, "mptable", 8) == 0);
  EXPECT(t->count == 3);
  EXPECT(t->apic_ids[0] == 2 && t->apic_ids[1] == 5 && t->apic_ids[2] == 7);
  EXPECT(t->bsp_apic_id == 2);
  EXPECT(t->ioapic_address == 0xfec00000);
  EXPECT(t->isa_irq_pin[0] == 2);
  EXPECT(t->isa_irq_pin[4] == 4 && t->isa_irq_pin[1] == 1);
  printf("%d passed, %d failed\n", 7 - failures, failures);
  return failures ? 1 : 0;
}
