/*
 * smp: starts every AP from the MP table (or MADT). Each AP atomically takes a slot in a
 * shared counter and records its APIC ID there; the BSP waits (bounded) for all of them.
 * Exits 0 when every CPU arrived, 1 on timeout.
 */
#include "runtime/rt.h"

#define ARRIVAL_TIMEOUT_MS 10000

static volatile u32 arrived = 1; /* the BSP */
static volatile u8 arrived_apic_ids[MAX_CPUS];

static void on_ap(u32 cpu_index, u8 apic_id) {
  (void)cpu_index;
  u32 slot = __atomic_fetch_add(&arrived, 1, __ATOMIC_ACQ_REL);
  if (slot < MAX_CPUS) arrived_apic_ids[slot] = apic_id;
}

int main(void) {
  const struct cpu_topology *cpus = cpus_discover();
  printf("smp: %u cpus found via %s, starting %u aps\n", cpus->count, cpus->source,
         cpus->count - 1);
  arrived_apic_ids[0] = lapic_id();
  smp_start_aps(on_ap, false);
  u32 ms = 0;
  while (__atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < cpus->count && ms < ARRIVAL_TIMEOUT_MS) {
    delay_us(1000);
    ms++;
  }
  u32 n = __atomic_load_n(&arrived, __ATOMIC_ACQUIRE);
  printf("smp: %u/%u cpus online\n", n, cpus->count);
  for (u32 i = 0; i < n && i < MAX_CPUS; i++) {
    printf("smp: cpu %u apic id %u\n", i, arrived_apic_ids[i]);
  }
  if (n < cpus->count) {
    printf("smp: timed out after %u ms\n", ARRIVAL_TIMEOUT_MS);
    return 1;
  }
  return 0;
}
