/*
 * demo: the guest embedded in the denovisor executable. It walks through what the
 * machine gives it (CPUs, memory, command line, PCI, timer) with one short line per step.
 */
#include "runtime/rt.h"

#define DEMO_TIMER_HZ 100
#define DEMO_TICKS 20
#define DEMO_TICK_TIMEOUT_MS 5000

static void show_boot_info(void) {
  const struct hvm_start_info *info = boot_info();
  if (!info) {
    printf("boot: no valid hvm_start_info at 0x%x\n", rt_start_info_paddr);
    return;
  }
  printf("boot: hvm_start_info at 0x%x (version %u, rsdp 0x%lx)\n", rt_start_info_paddr,
         info->version, info->rsdp_paddr);
  printf("cmdline: \"%s\"\n", boot_cmdline());
  u32 count;
  const struct hvm_memmap_entry *map = boot_memmap(&count);
  printf("memory map: %u entries\n", count);
  for (u32 i = 0; i < count; i++) {
    printf("  %016lx-%016lx %s\n", map[i].addr, map[i].addr + map[i].size - 1,
           memmap_type_name(map[i].type));
  }
  u64 ram = boot_total_ram();
  printf("memory: %lu MiB usable (%lu KiB)\n", ram >> 20, ram >> 10);
}

static void on_ap_online(u32 cpu_index, u8 apic_id) {
  printf("cpu %u online (apic id %u)\n", cpu_index, apic_id);
}

static void show_cpus(void) {
  const struct cpu_topology *cpus = cpus_discover();
  printf("cpus: %u found via %s, apic ids:", cpus->count, cpus->source);
  for (u32 i = 0; i < cpus->count; i++) printf(" %u", cpus->apic_ids[i]);
  printf(" (bsp %u)\n", cpus->bsp_apic_id);
  printf("cpu 0 online (apic id %u, bsp)\n", cpus->bsp_apic_id);
  if (cpus->count > 1) smp_start_aps(on_ap_online, true);
  printf("smp: %u/%u cpus online\n", smp_cpus_online(), cpus->count);
}

static bool count_ticks(void) {
  u32 pin = timer_start(DEMO_TIMER_HZ);
  printf("timer: PIT at %u Hz on IOAPIC pin %u, counting %u ticks\n", DEMO_TIMER_HZ, pin,
         DEMO_TICKS);
  u64 start = timer_ticks();
  for (u32 done = 5; done <= DEMO_TICKS; done += 5) {
    if (!timer_wait_ticks(start + done, DEMO_TICK_TIMEOUT_MS)) {
      printf("timer: no tick in %u ms, giving up\n", DEMO_TICK_TIMEOUT_MS);
      return false;
    }
    printf("timer: %u/%u ticks\n", done, DEMO_TICKS);
  }
  return true;
}

int main(void) {
  print("\nDenovisor demo guest\n");
  print("====================\n");
  show_boot_info();
  show_cpus();
  printf("pci: scanning bus 0\n");
  printf("pci: %u functions found\n", pci_scan_bus0());
  if (!count_ticks()) return 1;
  print("demo: done, exiting\n");
  return 0;
}
