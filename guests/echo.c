/*
 * echo: reads lines from the serial port, driven by the UART's receive interrupt
 * (IRQ 4 through the IOAPIC), and prints each back as "echo: LINE" until it reads a
 * line "quit", then exits 0. Tests console input end to end.
 */
#include "runtime/rt.h"

#define COM1 0x3f8
#define UART_RBR 0
#define UART_IER 1
#define UART_MCR 4
#define UART_LSR 5
#define IER_RX_AVAILABLE 0x01
#define LSR_DATA_READY 0x01
#define MCR_OUT2 0x08
#define SERIAL_VECTOR 0x24
#define SERIAL_ISA_IRQ 4

/* Bytes received by the interrupt handler, consumed by main(). */
static volatile char ring[256];
static volatile u32 ring_head, ring_tail;

static void on_serial(struct interrupt_frame *frame) {
  (void)frame;
  while (inb(COM1 + UART_LSR) & LSR_DATA_READY) {
    char c = (char)inb(COM1 + UART_RBR);
    if (ring_head - ring_tail < sizeof(ring)) ring[ring_head++ % sizeof(ring)] = c;
  }
}

static bool take(char *c) {
  irq_disable();
  bool any = ring_tail != ring_head;
  if (any) *c = ring[ring_tail++ % sizeof(ring)];
  irq_enable();
  return any;
}

static bool equals(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

int main(void) {
  const struct cpu_topology *cpus = cpus_discover();
  pic_disable();
  lapic_enable();
  interrupts_set_handler(SERIAL_VECTOR, on_serial);
  ioapic_route(cpus->ioapic_address, cpus->isa_irq_pin[SERIAL_ISA_IRQ], SERIAL_VECTOR, lapic_id());
  outb(COM1 + UART_MCR, MCR_OUT2);
  outb(COM1 + UART_IER, IER_RX_AVAILABLE);
  print("echo: ready\n");
  char line[128];
  u32 length = 0;
  for (;;) {
    char c;
    if (!take(&c)) {
      cpu_wait_for_interrupt();
      continue;
    }
    if (c != '\r' && c != '\n') {
      if (length < sizeof(line) - 1) line[length++] = c;
      continue;
    }
    if (length == 0) continue;
    line[length] = 0;
    length = 0;
    if (equals(line, "quit")) break;
    printf("echo: %s\n", line);
  }
  print("echo: bye\n");
  return 0;
}
