/* xAPIC (MMIO at 0xfee00000), IOAPIC redirection and the legacy 8259 pair. */
#include "rt.h"

#define LAPIC_ID 0x20
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_DIVIDE 0x3e0
#define LVT_MASKED (1u << 16)
#define TIMER_DIVIDE_BY_4 0x1
#define SVR_ENABLE 0x100
#define ICR_DELIVERY_PENDING (1u << 12)
#define IPI_DELIVERY_POLL_LIMIT 1000000

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REDIRECTION_TABLE 0x10

static u32 lapic_read(u32 reg) { return mmio_read32(LAPIC_DEFAULT_ADDRESS + reg); }
static void lapic_write(u32 reg, u32 v) { mmio_write32(LAPIC_DEFAULT_ADDRESS + reg, v); }

void lapic_enable(void) { lapic_write(LAPIC_SVR, SVR_ENABLE | SPURIOUS_VECTOR); }

u8 lapic_id(void) { return (u8)(lapic_read(LAPIC_ID) >> 24); }

void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }

void lapic_send_ipi(u8 apic_id, u32 icr_low) {
  lapic_write(LAPIC_ICR_HIGH, (u32)apic_id << 24);
  lapic_write(LAPIC_ICR_LOW, icr_low);
  for (u32 i = 0; i < IPI_DELIVERY_POLL_LIMIT; i++) {
    if (!(lapic_read(LAPIC_ICR_LOW) & ICR_DELIVERY_PENDING)) return;
  }
}

void lapic_timer_oneshot(u8 vector, u32 count) {
  lapic_write(LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_BY_4);
  lapic_write(LAPIC_LVT_TIMER, vector); /* one-shot, unmasked */
  lapic_write(LAPIC_TIMER_INITIAL, count);
}

void lapic_timer_stop(void) {
  lapic_write(LAPIC_TIMER_INITIAL, 0);
  lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
}

static void ioapic_write(u64 base, u32 reg, u32 v) {
  mmio_write32(base + IOAPIC_REGSEL, reg);
  mmio_write32(base + IOAPIC_WINDOW, v);
}

void ioapic_route(u64 ioapic_address, u32 pin, u8 vector, u8 dest_apic_id) {
  u32 reg = IOAPIC_REDIRECTION_TABLE + 2 * pin;
  /* High word (destination) first, so the entry is never live with a stale target. */
  ioapic_write(ioapic_address, reg + 1, (u32)dest_apic_id << 24);
  /* Fixed delivery, physical destination, active high, edge triggered, unmasked. */
  ioapic_write(ioapic_address, reg, vector);
}

void pic_disable(void) {
  /* ICW1-4: remap master to 0x30, slave to 0x38, so nothing lands on exception vectors. */
  outb(0x20, 0x11);
  outb(0xa0, 0x11);
  outb(0x21, 0x30);
  outb(0xa1, 0x38);
  outb(0x21, 0x04);
  outb(0xa1, 0x02);
  outb(0x21, 0x01);
  outb(0xa1, 0x01);
  outb(0x21, 0xff);
  outb(0xa1, 0xff);
}
