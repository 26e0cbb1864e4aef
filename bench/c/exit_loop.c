/*
 * exit_loop: the C baseline of bench/exit_roundtrip.ts. A minimal KVM VMM that boots the
 * same PVH ELF (guests/build/io_loop.elf) the way Denovisor does, runs its vCPU on the
 * main thread in a plain KVM_RUN loop, and counts the port-I/O exits until the guest
 * writes its status to the debug-exit port 0xf4.
 *
 * The VM mirrors Denovisor's machine where it could change the cost of an exit: in-kernel
 * irqchip and PIT, the same TSS/identity-map addresses, guest RAM as one private
 * anonymous mapping at 0, CPUID from KVM_GET_SUPPORTED_CPUID, the same boot GDT, segments
 * and hvm_start_info layout (core/boot/gdt.ts, core/boot/pvh.ts, core/layout.ts). COM1
 * output is discarded; its line status reads "transmitter empty" so the guest never waits.
 *
 * Usage: exit_loop KERNEL.elf "CMDLINE" [MEMORY_MIB]
 * Prints one JSON line: {"status":S,"exits":E,"ioExits":I,"postCodeExits":P,
 *   "runSeconds":T,"runCpuSeconds":C,"totalSeconds":W,"trace":[[t,e],...]}. runSeconds (wall) and
 * runCpuSeconds (process CPU time, user + system) span the first KVM_RUN to the debug-exit
 * write; totalSeconds spans the whole process from main(); trace holds
 * [seconds since the first KVM_RUN, exits so far] every 1000 exits.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* core/layout.ts */
#define BOOT_GDT_START 0x500
#define BOOT_IDT_START 0x520
#define PVH_INFO_START 0x6000
#define BOOT_STACK_POINTER 0x8ff0
#define CMDLINE_START 0x20000
#define CMDLINE_MAX 0x10000
#define EBDA_START 0x9fc00
#define HIMEM_START 0x100000
#define KVM_TSS_ADDRESS 0xfffbd000
#define KVM_IDENTITY_MAP_ADDRESS 0xfffbc000ull
#define POST_CODE_PORT 0x80
#define DEBUG_EXIT_PORT 0xf4
#define COM1_PORT 0x3f8
#define UART_LSR 5
#define LSR_TX_EMPTY 0x60

#define HVM_START_MAGIC 0x336ec578
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MAX_CPUID_ENTRIES 256
/* A trace point every this many exits: cheap (one vDSO clock read) and fine enough. */
#define TRACE_EVERY 1000
#define TRACE_MAX 100000

/* (seconds since the first KVM_RUN, exits so far), every TRACE_EVERY exits. */
static double trace_seconds[TRACE_MAX];
static uint64_t trace_exits[TRACE_MAX];
static size_t trace_points;

static void die(const char *what) {
  fprintf(stderr, "exit_loop: %s failed: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char *message) {
  fprintf(stderr, "exit_loop: %s\n", message);
  exit(1);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process (user + system): what the VMM spent, whoever else runs. */
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *read_file(const char *path, size_t *size) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("open(kernel)");
  struct stat st;
  if (fstat(fd, &st) < 0) die("fstat(kernel)");
  uint8_t *bytes = malloc((size_t)st.st_size);
  if (!bytes) fail("out of memory reading the kernel");
  size_t done = 0;
  while (done < (size_t)st.st_size) {
    ssize_t n = read(fd, bytes + done, (size_t)st.st_size - done);
    if (n <= 0) die("read(kernel)");
    done += (size_t)n;
  }
  close(fd);
  *size = done;
  return bytes;
}

/* Loads the PT_LOAD segments at their physical addresses; returns the PVH entry point. */
static uint32_t load_pvh_elf(uint8_t *ram, size_t ram_size, const uint8_t *elf, size_t size) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
  if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64) {
    fail("the kernel is not an x86-64 ELF64 file");
  }
  if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size) fail("bad ELF headers");
  uint32_t entry = 0;
  for (int i = 0; i < eh->e_phnum; i++) {
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(elf + eh->e_phoff) + i;
    if (ph->p_type == PT_LOAD) {
      if (ph->p_offset + ph->p_filesz > size || ph->p_paddr + ph->p_memsz > ram_size ||
          ph->p_filesz > ph->p_memsz) {
        fail("an ELF segment does not fit the file or guest RAM");
      }
      memcpy(ram + ph->p_paddr, elf + ph->p_offset, ph->p_filesz);
      memset(ram + ph->p_paddr + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    } else if (ph->p_type == PT_NOTE) {
      if (ph->p_offset + ph->p_filesz > size) fail("an ELF note does not fit the file");
      const uint8_t *p = elf + ph->p_offset, *end = p + ph->p_filesz;
      while (p + 12 <= end) {
        uint32_t namesz = ((const uint32_t *)p)[0], descsz = ((const uint32_t *)p)[1];
        uint32_t type = ((const uint32_t *)p)[2];
        const uint8_t *name = p + 12, *desc = name + ((namesz + 3) & ~3u);
        if (desc + descsz > end) break;
        if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && memcmp(name, "Xen", 4) == 0 &&
            descsz >= 4) {
          entry = *(const uint32_t *)desc;
        }
        p = desc + ((descsz + 3) & ~3u);
      }
    }
  }
  if (!entry) fail("the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note (not a PVH ELF)");
  return entry;
}

static void put_u32(uint8_t *at, uint32_t v) { memcpy(at, &v, 4); }
static void put_u64(uint8_t *at, uint64_t v) { memcpy(at, &v, 8); }

/* hvm_start_info at 0x6000 with a three-entry memory map, as core/boot/pvh.ts writes it. */
static void write_start_info(uint8_t *ram, size_t ram_size) {
  uint8_t *info = ram + PVH_INFO_START;
  uint64_t memmap = PVH_INFO_START + 56;
  memset(info, 0, 56 + 3 * 24);
  put_u32(info + 0, HVM_START_MAGIC);
  put_u32(info + 4, 1); /* version: with memmap */
  put_u64(info + 24, CMDLINE_START);
  put_u64(info + 40, memmap);
  put_u32(info + 48, 3);
  const uint64_t map[3][3] = {
      {0, EBDA_START, 1},
      {EBDA_START, HIMEM_START - EBDA_START, 2},
      {HIMEM_START, ram_size - HIMEM_START, 1},
  };
  for (int i = 0; i < 3; i++) {
    uint8_t *e = ram + memmap + 24 * i;
    put_u64(e, map[i][0]);
    put_u64(e + 8, map[i][1]);
    put_u32(e + 16, (uint32_t)map[i][2]);
  }
}

/* The boot GDT of core/boot/gdt.ts: null, 32-bit code 0x08, 64-bit code 0x10, data 0x18. */
static void write_gdt(uint8_t *ram) {
  const uint64_t gdt[4] = {0, 0x00cf9b000000ffffull, 0x00af9b000000ffffull, 0x00cf93000000ffffull};
  memcpy(ram + BOOT_GDT_START, gdt, sizeof gdt);
  put_u64(ram + BOOT_IDT_START, 0);
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type) {
  return (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = selector,
                              .type = type, .present = 1, .s = 1, .db = 1, .g = 1};
}

static void set_cpuid(int kvm, int vcpu) {
  size_t bytes = sizeof(struct kvm_cpuid2) + MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
  struct kvm_cpuid2 *cpuid = calloc(1, bytes);
  if (!cpuid) fail("out of memory for CPUID");
  cpuid->nent = MAX_CPUID_ENTRIES;
  if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("ioctl(KVM_GET_SUPPORTED_CPUID)");
  /* The leaves core/cpuid.ts changes for a one-vCPU VM that could change an exit's cost. */
  for (uint32_t i = 0; i < cpuid->nent; i++) {
    struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
    switch (e->function) {
      case 0x1: /* APIC ID 0, one logical CPU, hypervisor present, no HTT */
        e->ebx = (1u << 16) | (e->ebx & 0xffff);
        e->ecx |= 1u << 31;
        e->edx &= ~(1u << 28);
        break;
      case 0xa: /* no virtual PMU: KVM then has no counters to switch on entry and exit */
        e->eax = e->ebx = e->ecx = e->edx = 0;
        break;
      case 0x40000000:
        if (e->eax < 0x40000001) e->eax = 0x40000001;
        break;
    }
  }
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("ioctl(KVM_SET_CPUID2)");
  free(cpuid);
}

/* The MSRs core/msrs.ts sets, as firmware leaves them (MTRRs on, write-back default). */
static void set_msrs(int vcpu) {
  static const uint32_t zeroed[] = {0x174, 0x175, 0x176, 0xc0000081, 0xc0000083, 0xc0000102,
                                    0xc0000084, 0xc0000082, 0x10};
  struct {
    struct kvm_msrs header;
    struct kvm_msr_entry entries[11];
  } msrs = {.header.nmsrs = 11};
  for (int i = 0; i < 9; i++) msrs.entries[i].index = zeroed[i];
  msrs.entries[9] = (struct kvm_msr_entry){.index = 0x1a0, .data = 1};              /* fast strings */
  msrs.entries[10] = (struct kvm_msr_entry){.index = 0x2ff, .data = (1 << 11) | 6}; /* MTRRs, WB */
  if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 11) die("ioctl(KVM_SET_MSRS)");
}

static void set_boot_registers(int vcpu, uint32_t entry) {
  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("ioctl(KVM_GET_SREGS)");
  sregs.cs = flat_segment(0x08, 0xb);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(0x18, 0x3);
  sregs.tr = (struct kvm_segment){.limit = 0x67, .selector = 0x20, .type = 0xb, .present = 1};
  sregs.ldt = (struct kvm_segment){.type = 0x2, .unusable = 1};
  sregs.gdt = (struct kvm_dtable){.base = BOOT_GDT_START, .limit = 31};
  sregs.idt = (struct kvm_dtable){.base = BOOT_IDT_START, .limit = 0};
  sregs.cr0 = 0x11; /* PE | ET */
  sregs.cr3 = sregs.cr4 = sregs.efer = 0;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("ioctl(KVM_SET_SREGS)");
  struct kvm_regs regs = {.rip = entry, .rsp = BOOT_STACK_POINTER, .rbp = BOOT_STACK_POINTER,
                          .rbx = PVH_INFO_START, .rflags = 2};
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("ioctl(KVM_SET_REGS)");
  struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
  if (ioctl(vcpu, KVM_SET_FPU, &fpu) < 0) die("ioctl(KVM_SET_FPU)");
}

int main(int argc, char **argv) {
  double process_start = now_seconds();
  if (argc < 3) fail("usage: exit_loop KERNEL.elf \"CMDLINE\" [MEMORY_MIB]");
  size_t ram_size = (size_t)(argc > 3 ? atol(argv[3]) : 256) << 20;
  if (ram_size < (2u << 20) || ram_size > (3ull << 30)) fail("MEMORY_MIB must be 2 to 3072");
  size_t cmdline_len = strlen(argv[2]);
  if (cmdline_len >= CMDLINE_MAX) fail("the command line is too long");

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open(/dev/kvm)");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("ioctl(KVM_CREATE_VM)");
  if (ioctl(vm, KVM_SET_TSS_ADDR, KVM_TSS_ADDRESS) < 0) die("ioctl(KVM_SET_TSS_ADDR)");
  uint64_t identity = KVM_IDENTITY_MAP_ADDRESS;
  if (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) die("ioctl(KVM_SET_IDENTITY_MAP_ADDR)");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("ioctl(KVM_CREATE_IRQCHIP)");
  struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
  if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) die("ioctl(KVM_CREATE_PIT2)");

  uint8_t *ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ram == MAP_FAILED) die("mmap(guest RAM)");
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = ram_size, .userspace_addr = (uint64_t)ram};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("ioctl(KVM_SET_USER_MEMORY_REGION)");

  size_t kernel_size;
  uint8_t *kernel = read_file(argv[1], &kernel_size);
  uint32_t entry = load_pvh_elf(ram, ram_size, kernel, kernel_size);
  memcpy(ram + CMDLINE_START, argv[2], cmdline_len + 1);
  write_start_info(ram, ram_size);
  write_gdt(ram);

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("ioctl(KVM_CREATE_VCPU)");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < 0) die("ioctl(KVM_GET_VCPU_MMAP_SIZE)");
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap(kvm_run)");
  set_cpuid(kvm, vcpu);
  set_msrs(vcpu);
  set_boot_registers(vcpu, entry);

  uint64_t exits = 0, io_exits = 0, post_code_exits = 0;
  int status = -1;
  double run_start = now_seconds(), cpu_start = cpu_seconds();
  while (status < 0) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      die("ioctl(KVM_RUN)");
    }
    exits++;
    if (exits % TRACE_EVERY == 0 && trace_points < TRACE_MAX) {
      trace_seconds[trace_points] = now_seconds() - run_start;
      trace_exits[trace_points++] = exits;
    }
    switch (run->exit_reason) {
      case KVM_EXIT_IO: {
        io_exits++;
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        size_t bytes = (size_t)run->io.size * run->io.count;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
          if (run->io.port == POST_CODE_PORT) post_code_exits++;
          if (run->io.port == DEBUG_EXIT_PORT) status = data[0];
        } else {
          /* Unclaimed ports float high; 0xff also says "transmitter empty" for COM1's LSR. */
          memset(data, run->io.port == COM1_PORT + UART_LSR ? LSR_TX_EMPTY : 0xff, bytes);
        }
        break;
      }
      case KVM_EXIT_MMIO:
        if (!run->mmio.is_write) memset(run->mmio.data, 0xff, sizeof run->mmio.data);
        break;
      case KVM_EXIT_HLT:
      case KVM_EXIT_SHUTDOWN:
        fprintf(stderr, "exit_loop: guest stopped (exit reason %u) before the debug exit\n",
                run->exit_reason);
        return 1;
      default:
        fprintf(stderr, "exit_loop: unexpected exit reason %u at the %llu-th exit\n",
                run->exit_reason, (unsigned long long)exits);
        return 1;
    }
  }
  double run_end = now_seconds(), cpu_end = cpu_seconds();
  printf("{\"status\":%d,\"exits\":%llu,\"ioExits\":%llu,\"postCodeExits\":%llu,"
         "\"runSeconds\":%.9f,\"runCpuSeconds\":%.9f,\"totalSeconds\":%.9f,\"trace\":[",
         status, (unsigned long long)exits, (unsigned long long)io_exits,
         (unsigned long long)post_code_exits, run_end - run_start, cpu_end - cpu_start,
         run_end - process_start);
  for (size_t i = 0; i < trace_points; i++) {
    printf("%s[%.9f,%llu]", i ? "," : "", trace_seconds[i], (unsigned long long)trace_exits[i]);
  }
  printf("]}\n");
  return 0;
}
