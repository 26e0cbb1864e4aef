/*
 * exit_status: exits with `status=N` from the command line (default 0), or with
 * `reset` resets the machine through the i8042 keyboard controller, as Linux's
 * `reboot=k` does.
 */
#include "runtime/rt.h"

int main(void) {
  if (cmdline_has("reset")) {
    print("exit_status: resetting through the i8042\n");
    outb(0x64, 0xfe);
    for (;;) __asm__ volatile("cli; hlt");
  }
  u64 status = cmdline_get_u64("status", 0);
  printf("exit_status: exiting with status %lu\n", status);
  return (int)(status & 0xff);
}
