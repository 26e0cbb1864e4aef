/* hello: the minimal smoke test. Prints one line and exits 0. */
#include "runtime/rt.h"

int main(void) {
  print("hello from guest\n");
  return 0;
}
