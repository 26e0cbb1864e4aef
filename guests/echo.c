/*
 * echo: reads lines from the serial port, driven by the UART's receive interrupt
 * (IRQ 4 through the IOAPIC), and prints each back as "echo: LINE" until it reads a
 * line "quit", then exits 0. Tests console input end to end.
 */
#include "runtime/rt.h"

int main(void) {
  const struct cpu_topology *cpus = cpus_discover();
  pic_disable();
  lapic_enable();
  serial_input_start(cpus);
  print("echo: ready\n");
  char line[128];
  u32 length = 0;
  for (;;) {
    char c;
    if (!serial_take(&c)) {
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
    if (str_equal(line, "quit")) break;
    printf("echo: %s\n", line);
  }
  print("echo: bye\n");
  return 0;
}
