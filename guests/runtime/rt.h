/*
 * The tiny runtime shared by every test guest: what a guest's main() may call.
 *
 * Boot: PVH 32-bit entry (runtime/entry.S) -> own GDT and identity page tables (2 MiB
 * pages, first 4 GiB, the top GiB uncached for LAPIC/IOAPIC MMIO) -> long mode ->
 * rt_start() -> main(). main() returning N is exit(N).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

/* ---- port and MMIO access ---- */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) {
  u8 v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline u16 inw(u16 port) {
  u16 v;
  __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline u32 inl(u16 port) {
  u32 v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)addr; }
static inline void mmio_write32(u64 addr, u32 v) { *(volatile u32 *)addr = v; }

static inline void cpuid(u32 leaf, u32 subleaf, u32 out[4]) {
  __asm__ volatile("cpuid"
                   : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3])
                   : "a"(leaf), "c"(subleaf));
}
static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }
/* Waits for the next interrupt with interrupts enabled (sti's shadow covers the hlt). */
static inline void cpu_wait_for_interrupt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
/* No `pause`: plain compiler barrier, since the CPL0 emulator here is the CPU. */
static inline void cpu_relax(void) { __asm__ volatile("" ::: "memory"); }

/* ---- libc-like bits (runtime/string.c) ---- */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* ---- serial console and printing (runtime/serial.c, runtime/printf.c) ---- */
#define COM1_PORT 0x3f8
void serial_init(void);
void serial_putc(char c);
/* Prints a string; "\n" goes out as "\r\n" like a Linux serial console. */
void print(const char *s);
/* printf subset: %d %i %u %x %X %s %c %p %%, flags '0' '-', width, length l ll z. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
/* Drops the print lock, for a CPU that must print while another one may hold it. */
void print_force_unlock(void);

/* ---- exit (runtime/exit.c) ---- */
#define DEBUG_EXIT_PORT 0xf4
/* Debug-exit port, then i8042 reset, then cli;hlt forever. */
__attribute__((noreturn)) void exit(int status);

/* ---- PVH start info, memory map and command line (runtime/boot_info.c) ---- */
#define HVM_START_MAGIC 0x336ec578u
struct hvm_start_info {
  u32 magic;
  u32 version;
  u32 flags;
  u32 nr_modules;
  u64 modlist_paddr;
  u64 cmdline_paddr;
  u64 rsdp_paddr;
  u64 memmap_paddr; /* version >= 1 */
  u32 memmap_entries;
  u32 reserved;
};
struct hvm_memmap_entry {
  u64 addr;
  u64 size;
  u32 type; /* 1 RAM, 2 reserved, 3 ACPI, 4 NVS, 5 unusable */
  u32 reserved;
};
extern u32 rt_start_info_paddr; /* EBX at entry, saved by entry.S */
/* The start info, or NULL when EBX did not point at a valid one. */
const struct hvm_start_info *boot_info(void);
/* The command line ("" when there is none). */
const char *boot_cmdline(void);
/* Memory map entries (count in *count; NULL when the start info has none). */
const struct hvm_memmap_entry *boot_memmap(u32 *count);
const char *memmap_type_name(u32 type);
/* Sum of the RAM (type 1) entries. */
u64 boot_total_ram(void);
/* Copies the value of `key=value` into out (NUL-terminated); false when key is absent. */
bool cmdline_get(const char *key, char *out, size_t out_size);
/* Parses the value of `key` as decimal or 0x-hex; fallback when absent or malformed. */
u64 cmdline_get_u64(const char *key, u64 fallback);
/* True when `key` is present as a bare word or with a value. */
bool cmdline_has(const char *key);

/* ---- interrupts (runtime/interrupts.c, stubs in runtime/entry.S) ---- */
struct interrupt_frame {
  u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  u64 vector, error_code;
  u64 rip, cs, rflags, rsp, ss;
};
typedef void (*interrupt_handler_fn)(struct interrupt_frame *frame);
/* Builds the IDT (once) and loads it on the calling CPU. */
void interrupts_init(void);
/* Handlers for vectors >= 32; the runtime sends the LAPIC EOI after the handler. */
void interrupts_set_handler(u8 vector, interrupt_handler_fn fn);

/* ---- LAPIC, IOAPIC and 8259 PIC (runtime/apic.c) ---- */
#define LAPIC_DEFAULT_ADDRESS 0xfee00000u
#define IOAPIC_DEFAULT_ADDRESS 0xfec00000u
#define SPURIOUS_VECTOR 0xff
/* Software-enables the calling CPU's LAPIC (spurious vector 0xff). */
void lapic_enable(void);
u8 lapic_id(void);
void lapic_eoi(void);
/* Sends an IPI (ICR low word as given) to an APIC ID and waits until it is delivered. */
void lapic_send_ipi(u8 apic_id, u32 icr_low);
/* One-shot LAPIC timer, divide by 4: `count` bus cycles (KVM's APIC bus runs at 1 GHz). */
void lapic_timer_oneshot(u8 vector, u32 count);
void lapic_timer_stop(void);
/* Routes an IOAPIC pin, edge-triggered active-high, to a vector on one CPU. */
void ioapic_route(u64 ioapic_address, u32 pin, u8 vector, u8 dest_apic_id);
/* Remaps the 8259 pair to vectors 0x30-0x3f and masks every line. */
void pic_disable(void);

/* ---- CPUs and interrupt routing from the MP table or ACPI MADT (runtime/cpus.c) ---- */
#define MAX_CPUS 16
struct cpu_topology {
  u32 count;
  u8 apic_ids[MAX_CPUS];
  u8 bsp_apic_id;
  u64 ioapic_address;
  u8 isa_irq_pin[16]; /* IOAPIC pin of each ISA IRQ (identity unless overridden) */
  const char *source; /* "mptable", "acpi" or "none" */
};
/* Finds CPUs: MP table first (EBDA, then 0xf0000-0xfffff), then the ACPI MADT. */
const struct cpu_topology *cpus_discover(void);

/* ---- timer: PIT channel 0 through the IOAPIC (runtime/timer.c) ---- */
#define TIMER_VECTOR 0x20
#define PIT_HZ 1193182u
/*
 * Starts PIT channel 0 at `hz` (mode 2), routed through the IOAPIC pin that the MP
 * table/MADT gives for ISA IRQ 0 (pin 2 under Denovisor and QEMU) to the BSP, masks the
 * 8259s and enables interrupts. Returns that pin.
 */
u32 timer_start(u32 hz);
u64 timer_ticks(void);
/*
 * Halts until timer_ticks() >= target or timeout_ms pass (a LAPIC one-shot timer on
 * WATCHDOG_VECTOR, so it works even when PIT interrupts never come); true if reached.
 * Halting matters: on this host, PIT interrupts barely arrive while a CPU busy-polls.
 */
#define WATCHDOG_VECTOR 0x21
bool timer_wait_ticks(u64 target, u32 timeout_ms);
/* Busy-waits using PIT channel 2 (port 0x61 gate), so it works with interrupts off. */
void delay_us(u32 us);

/* ---- SMP bring-up (runtime/smp.c) ---- */
#define AP_TRAMPOLINE_ADDRESS 0x10000u /* SIPI vector 0x10; below 1 MiB, 4 KiB aligned */
typedef void (*ap_main_fn)(u32 cpu_index, u8 apic_id);
/*
 * Starts every AP in the topology with INIT-SIPI-SIPI, one after another. Each AP runs
 * fn(cpu_index, apic_id) on its own stack with its LAPIC enabled, then halts. With
 * wait_each the BSP waits (bounded) for fn to return before starting the next AP, which
 * keeps their output in order. Returns the number of APs that started.
 */
u32 smp_start_aps(ap_main_fn fn, bool wait_each);
/* CPUs that have finished their ap_main (plus the BSP). */
u32 smp_cpus_online(void);

/* ---- PCI (runtime/pci.c) ---- */
u32 pci_conf1_read32(u8 bus, u8 dev, u8 fn, u8 offset);
/* Enumerates bus 0 through conf1 and prints one line per function; returns the count. */
u32 pci_scan_bus0(void);

/* ---- serial input (runtime/serial_input.c) ---- */
/* Takes COM1's receive interrupt (IRQ 4, routed through the IOAPIC to this CPU). */
void serial_input_start(const struct cpu_topology *cpus);
/* The next received byte, if any; false when none is waiting. */
bool serial_take(char *c);
/* Whether received bytes wait; call with interrupts off to decide to halt. */
bool serial_pending(void);
/* Whether two strings are equal. */
bool str_equal(const char *a, const char *b);

/* Every guest defines this. */
int main(void);
