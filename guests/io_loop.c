/*
 * io_loop: benchmark guest. `count=N` (default 100000) `out` instructions to `port=P`
 * (default 0x80) in a tight loop, then exit 0 through the debug-exit port.
 */
#include "runtime/rt.h"

int main(void) {
  u64 count = cmdline_get_u64("count", 100000);
  u16 port = (u16)cmdline_get_u64("port", 0x80);
  printf("io_loop: %lu outs to port 0x%x\n", count, port);
  for (u64 i = 0; i < count; i++) {
    __asm__ volatile("outb %%al, %%dx" ::"a"(0), "d"(port));
  }
  print("io_loop: done\n");
  return 0;
}
