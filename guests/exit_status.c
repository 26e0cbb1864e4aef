/* exit_status: exits with `status=N` from the command line (default 0). */
#include "runtime/rt.h"

int main(void) {
  u64 status = cmdline_get_u64("status", 0);
  printf("exit_status: exiting with status %lu\n", status);
  return (int)(status & 0xff);
}
