/* The IDT, exception reports and dispatch of device interrupts to handlers. */
#include "rt.h"

#define KERNEL_CS 0x18
#define GATE_INTERRUPT 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define EXCEPTION_EXIT_STATUS 99

struct idt_entry {
  u16 offset_low;
  u16 selector;
  u8 ist;
  u8 type_attr;
  u16 offset_mid;
  u32 offset_high;
  u32 reserved;
} __attribute__((packed));

struct idt_pointer {
  u16 limit;
  u64 base;
} __attribute__((packed));

extern char isr_stubs[];
void print_unlocked(const char *s);

static struct idt_entry idt[256] __attribute__((aligned(16)));
static interrupt_handler_fn handlers[256];
static bool idt_built;

static const char *const exception_names[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
    "#BR bound range", "#UD invalid opcode", "#NM device not available", "#DF double fault",
    "coprocessor overrun", "#TS invalid TSS", "#NP segment not present", "#SS stack fault",
    "#GP general protection", "#PF page fault", "reserved", "#MF x87 error",
    "#AC alignment check", "#MC machine check", "#XM SIMD error", "#VE virtualization",
    "#CP control protection",
};

void interrupts_init(void) {
  if (!idt_built) {
    for (int v = 0; v < 256; v++) {
      u64 addr = (u64)isr_stubs + 16 * (u64)v;
      idt[v] = (struct idt_entry){
          .offset_low = (u16)addr,
          .selector = KERNEL_CS,
          .type_attr = GATE_INTERRUPT,
          .offset_mid = (u16)(addr >> 16),
          .offset_high = (u32)(addr >> 32),
      };
    }
    idt_built = true;
  }
  struct idt_pointer ptr = {.limit = sizeof idt - 1, .base = (u64)idt};
  __asm__ volatile("lidt %0" ::"m"(ptr));
}

void interrupts_set_handler(u8 vector, interrupt_handler_fn fn) { handlers[vector] = fn; }

static __attribute__((noreturn)) void report_exception(struct interrupt_frame *f) {
  u64 cr2;
  __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
  const char *name = f->vector < 32 && exception_names[f->vector] ? exception_names[f->vector]
                                                                  : "exception";
  /* The faulting CPU may have held the print lock; output matters more than order now. */
  print_force_unlock();
  printf("exception: vector %lu (%s) error 0x%lx rip 0x%lx cr2 0x%lx\n", f->vector, name,
         f->error_code, f->rip, cr2);
  exit(EXCEPTION_EXIT_STATUS);
}

/* Called from isr_common in entry.S with interrupts off. */
void rt_interrupt_dispatch(struct interrupt_frame *f) {
  if (f->vector < 32) report_exception(f);
  if (f->vector == SPURIOUS_VECTOR) return; /* no EOI for LAPIC spurious interrupts */
  interrupt_handler_fn fn = handlers[f->vector];
  if (fn) fn(f);
  /* 0x30-0x3f are the masked 8259s' vectors: their spurious IRQs never reach the LAPIC ISR. */
  if (f->vector < 0x30 || f->vector > 0x3f) lapic_eoi();
}
