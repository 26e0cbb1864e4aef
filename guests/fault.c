/*
 * fault: ends the VM the wrong way, as `fault=` on the command line asks.
 *   triple    - empty IDT, then ud2: #UD cannot be delivered -> #DF -> triple fault
 *               (KVM_EXIT_SHUTDOWN; QEMU -no-reboot exits)
 *   mmio-exec - jumps into the unbacked MMIO hole at 0xd0000000: KVM cannot fetch the
 *               instruction (emulation failure / internal error)
 *   exception - divide by zero: the runtime's handler prints it and exits 99 (default)
 */
#include "runtime/rt.h"

#define MMIO_HOLE_TARGET 0xd0000000ul

struct idt_pointer {
  u16 limit;
  u64 base;
} __attribute__((packed));

int main(void) {
  char kind[32] = "exception";
  cmdline_get("fault", kind, sizeof kind);
  printf("fault: %s\n", kind);
  if (strncmp(kind, "triple", sizeof kind) == 0) {
    struct idt_pointer empty = {0, 0};
    __asm__ volatile("lidt %0; ud2" ::"m"(empty));
  } else if (strncmp(kind, "mmio-exec", sizeof kind) == 0) {
    __asm__ volatile("jmp *%0" ::"r"(MMIO_HOLE_TARGET));
  } else if (strncmp(kind, "exception", sizeof kind) == 0) {
    u32 zero = 0;
    __asm__ volatile("xorl %%edx, %%edx; movl $1, %%eax; divl %0" ::"r"(zero) : "eax", "edx");
  } else {
    printf("fault: unknown kind; use fault=triple, fault=mmio-exec or fault=exception\n");
    return 2;
  }
  printf("fault: still running after the fault\n");
  return 3;
}
