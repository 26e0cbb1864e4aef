/* COM1 16550 output by polling, and the lock that keeps lines whole across CPUs. */
#include "rt.h"

#define UART_THR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THR_EMPTY 0x20
/* Bounded so a missing UART cannot hang the guest: the byte is dropped instead. */
#define THRE_POLL_LIMIT 100000

static volatile u32 print_lock;

void serial_init(void) {
  outb(COM1_PORT + UART_IER, 0x00);
  outb(COM1_PORT + UART_LCR, 0x80); /* DLAB on: divisor 1 = 115200 baud */
  outb(COM1_PORT + 0, 0x01);
  outb(COM1_PORT + 1, 0x00);
  outb(COM1_PORT + UART_LCR, 0x03); /* 8N1, DLAB off */
  outb(COM1_PORT + UART_FCR, 0x07); /* FIFOs on and cleared */
  outb(COM1_PORT + UART_MCR, 0x03); /* DTR, RTS */
}

void serial_putc(char c) {
  for (u32 i = 0; i < THRE_POLL_LIMIT; i++) {
    if (inb(COM1_PORT + UART_LSR) & LSR_THR_EMPTY) break;
  }
  outb(COM1_PORT + UART_THR, (u8)c);
}

void print_lock_acquire(void) {
  while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE)) {
    while (__atomic_load_n(&print_lock, __ATOMIC_RELAXED)) cpu_relax();
  }
}

void print_lock_release(void) { __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE); }

void print_force_unlock(void) { print_lock_release(); }

void print_unlocked(const char *s) {
  for (; *s; s++) {
    if (*s == '\n') serial_putc('\r');
    serial_putc(*s);
  }
}

void print(const char *s) {
  print_lock_acquire();
  print_unlocked(s);
  print_lock_release();
}
