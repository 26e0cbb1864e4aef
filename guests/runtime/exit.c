/* Runtime start (BSP, from entry.S) and exit. */
#include "rt.h"

#define I8042_COMMAND_PORT 0x64
#define I8042_RESET 0xfe

__attribute__((noreturn)) void exit(int status) {
  outb(DEBUG_EXIT_PORT, (u8)status);
  /* Without a debug-exit device: reset through the keyboard controller. */
  outb(I8042_COMMAND_PORT, I8042_RESET);
  for (;;) __asm__ volatile("cli; hlt");
}

/* Called by entry.S on the BSP in long mode, on the boot stack. */
void rt_start(void) {
  serial_init();
  interrupts_init();
  exit(main());
}
