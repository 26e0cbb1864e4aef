/*
 * AP bring-up: the 16-bit trampoline from entry.S is copied to AP_TRAMPOLINE_ADDRESS,
 * then each AP gets INIT, SIPI, SIPI. APs are started one at a time because they share
 * the boot variables below (stack and index) until they have copied them.
 */
#include "rt.h"

#define AP_STACK_SIZE 16384
#define ICR_INIT_ASSERT 0x00004500
#define ICR_STARTUP 0x00004600
#define AP_START_TIMEOUT_MS 2000
#define AP_MAIN_TIMEOUT_MS 5000

extern char ap_trampoline_start[], ap_trampoline_end[];

/* Read by entry.S (ap_entry64) before the AP has a stack. */
volatile u64 ap_boot_stack;
static volatile u32 ap_boot_index;
static volatile u32 ap_started;
static volatile u32 ap_finished;
static volatile u32 cpus_online = 1;
static ap_main_fn ap_main;

static u8 ap_stacks[MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));

/* Called by entry.S on an AP in long mode, on its own stack. */
void rt_ap_start(void) {
  u32 index = ap_boot_index;
  interrupts_init();
  lapic_enable();
  __atomic_store_n(&ap_started, 1, __ATOMIC_RELEASE);
  if (ap_main) ap_main(index, lapic_id());
  __atomic_fetch_add(&cpus_online, 1, __ATOMIC_ACQ_REL);
  __atomic_store_n(&ap_finished, 1, __ATOMIC_RELEASE);
}

static bool wait_flag(volatile u32 *flag, u32 timeout_ms) {
  for (u32 ms = 0; ms < timeout_ms; ms++) {
    if (__atomic_load_n(flag, __ATOMIC_ACQUIRE)) return true;
    delay_us(1000);
  }
  return __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0;
}

static bool start_ap(u32 index, u8 apic_id, bool wait_each) {
  ap_boot_stack = (u64)&ap_stacks[index][AP_STACK_SIZE];
  ap_boot_index = index;
  ap_started = 0;
  ap_finished = 0;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  lapic_send_ipi(apic_id, ICR_INIT_ASSERT);
  delay_us(10000);
  for (int sipi = 0; sipi < 2 && !ap_started; sipi++) {
    lapic_send_ipi(apic_id, ICR_STARTUP | (AP_TRAMPOLINE_ADDRESS >> 12));
    delay_us(200);
  }
  if (!wait_flag(&ap_started, AP_START_TIMEOUT_MS)) {
    printf("smp: cpu %u (apic id %u) did not start\n", index, apic_id);
    return false;
  }
  if (wait_each && !wait_flag(&ap_finished, AP_MAIN_TIMEOUT_MS)) {
    printf("smp: cpu %u (apic id %u) did not finish\n", index, apic_id);
  }
  return true;
}

u32 smp_start_aps(ap_main_fn fn, bool wait_each) {
  const struct cpu_topology *cpus = cpus_discover();
  lapic_enable();
  memcpy((void *)(u64)AP_TRAMPOLINE_ADDRESS, ap_trampoline_start,
         (size_t)(ap_trampoline_end - ap_trampoline_start));
  ap_main = fn;
  u32 started = 0;
  u32 index = 1;
  for (u32 i = 0; i < cpus->count; i++) {
    u8 apic_id = cpus->apic_ids[i];
    if (apic_id == cpus->bsp_apic_id) continue;
    if (start_ap(index, apic_id, wait_each)) started++;
    index++;
  }
  return started;
}

u32 smp_cpus_online(void) { return __atomic_load_n(&cpus_online, __ATOMIC_ACQUIRE); }
