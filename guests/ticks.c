/*
 * ticks: prints "tick N" every 10 timer ticks (100 Hz PIT through the IOAPIC), forever,
 * or until `ticks=M` from the command line is reached, then exits 0.
 */
#include "runtime/rt.h"

#define TICKS_HZ 100
#define TICKS_PER_LINE 10

int main(void) {
  u64 limit = cmdline_get_u64("ticks", 0);
  u32 pin = timer_start(TICKS_HZ);
  if (limit) printf("ticks: PIT at %u Hz on IOAPIC pin %u, until %lu\n", TICKS_HZ, pin, limit);
  else printf("ticks: PIT at %u Hz on IOAPIC pin %u, forever\n", TICKS_HZ, pin);
  u64 next = TICKS_PER_LINE;
  for (;;) {
    cpu_wait_for_interrupt();
    u64 now = timer_ticks();
    if (now < next) continue;
    next = now - now % TICKS_PER_LINE;
    printf("tick %lu\n", next);
    next += TICKS_PER_LINE;
    if (limit && now >= limit) break;
  }
  print("ticks: done\n");
  return 0;
}
