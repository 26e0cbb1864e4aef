/*
 * Timer ticks from the i8254 PIT channel 0 (mode 2), delivered through the IOAPIC to the
 * BSP's LAPIC as TIMER_VECTOR. The 8259s are masked. Delays use PIT channel 2, polled.
 */
#include "rt.h"

#define PIT_CHANNEL0 0x40
#define PIT_CHANNEL2 0x42
#define PIT_COMMAND 0x43
#define PORT_B 0x61 /* bit 0: channel 2 gate, bit 1: speaker, bit 5: channel 2 output */
#define MAX_DELAY_CHUNK_US 50000
#define MAX_POLLS_PER_CHUNK 2000000

static volatile u64 ticks;

static void on_timer(struct interrupt_frame *frame) {
  (void)frame;
  ticks++;
}

u32 timer_start(u32 hz) {
  const struct cpu_topology *cpus = cpus_discover();
  u32 pin = cpus->isa_irq_pin[0];
  u32 divisor = (PIT_HZ + hz / 2) / hz;
  if (divisor > 0xffff) divisor = 0xffff;
  pic_disable();
  lapic_enable();
  interrupts_set_handler(TIMER_VECTOR, on_timer);
  ioapic_route(cpus->ioapic_address, pin, TIMER_VECTOR, lapic_id());
  outb(PIT_COMMAND, 0x34); /* channel 0, low then high byte, mode 2, binary */
  outb(PIT_CHANNEL0, (u8)divisor);
  outb(PIT_CHANNEL0, (u8)(divisor >> 8));
  irq_enable();
  return pin;
}

u64 timer_ticks(void) { return ticks; }

#define LAPIC_CYCLES_PER_MS_DIV4 250000u /* 1 GHz APIC bus / 4 */
#define MAX_WATCHDOG_MS 17000u           /* keeps the count within 32 bits */

static volatile bool watchdog_fired;

static void on_watchdog(struct interrupt_frame *frame) {
  (void)frame;
  watchdog_fired = true;
}

bool timer_wait_ticks(u64 target, u32 timeout_ms) {
  if (timeout_ms > MAX_WATCHDOG_MS) timeout_ms = MAX_WATCHDOG_MS;
  watchdog_fired = false;
  interrupts_set_handler(WATCHDOG_VECTOR, on_watchdog);
  lapic_timer_oneshot(WATCHDOG_VECTOR, timeout_ms * LAPIC_CYCLES_PER_MS_DIV4);
  while (ticks < target && !watchdog_fired) cpu_wait_for_interrupt();
  lapic_timer_stop();
  return ticks >= target;
}

static void delay_chunk(u32 us) {
  u32 count = (u32)(((u64)us * PIT_HZ + 999999) / 1000000);
  if (count < 1) count = 1;
  if (count > 0xffff) count = 0xffff;
  outb(PORT_B, (inb(PORT_B) & ~0x02) | 0x01);
  outb(PIT_COMMAND, 0xb0); /* channel 2, low then high byte, mode 0 (one shot), binary */
  outb(PIT_CHANNEL2, (u8)count);
  outb(PIT_CHANNEL2, (u8)(count >> 8));
  /* Bounded: without a PIT behind port 0x61 the delay ends early instead of never. */
  for (u32 polls = 0; polls < MAX_POLLS_PER_CHUNK && !(inb(PORT_B) & 0x20); polls++) cpu_relax();
}

void delay_us(u32 us) {
  while (us > 0) {
    u32 chunk = us > MAX_DELAY_CHUNK_US ? MAX_DELAY_CHUNK_US : us;
    delay_chunk(chunk);
    us -= chunk;
  }
}
