/* COM1 input driven by the UART's receive interrupt (IRQ 4 through the IOAPIC). */
#include "rt.h"

#define UART_RBR 0
#define UART_IER 1
#define UART_MCR 4
#define UART_LSR 5
#define IER_RX_AVAILABLE 0x01
#define LSR_DATA_READY 0x01
#define MCR_OUT2 0x08 /* gates the UART's interrupt line on a PC */
#define SERIAL_VECTOR 0x24
#define SERIAL_ISA_IRQ 4

/* Bytes received by the interrupt handler, consumed by serial_take(). */
static volatile char ring[256];
static volatile u32 ring_head, ring_tail;

static void on_serial(struct interrupt_frame *frame) {
  (void)frame;
  while (inb(COM1_PORT + UART_LSR) & LSR_DATA_READY) {
    char c = (char)inb(COM1_PORT + UART_RBR);
    if (ring_head - ring_tail < sizeof(ring)) ring[ring_head++ % sizeof(ring)] = c;
  }
}

void serial_input_start(const struct cpu_topology *cpus) {
  interrupts_set_handler(SERIAL_VECTOR, on_serial);
  ioapic_route(cpus->ioapic_address, cpus->isa_irq_pin[SERIAL_ISA_IRQ], SERIAL_VECTOR, lapic_id());
  outb(COM1_PORT + UART_MCR, MCR_OUT2);
  outb(COM1_PORT + UART_IER, IER_RX_AVAILABLE);
}

bool serial_take(char *c) {
  irq_disable();
  bool any = ring_tail != ring_head;
  if (any) *c = ring[ring_tail++ % sizeof(ring)];
  irq_enable();
  return any;
}

bool serial_pending(void) { return ring_tail != ring_head; }
