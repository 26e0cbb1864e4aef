/*
 * domain: a long-running guest for the toolstack tests (daemon, `denovisor vmm`).
 *
 * Prints "domain guest up", then "tick N" every 50 PIT ticks (about 0.5 s at 100 Hz),
 * forever, halting between interrupts (the CPL0 emulator here is slow). Serial input
 * (IRQ 4) is read line by line and answered:
 *   any line   -> "echo: LINE"
 *   "reset"    -> resets through the i8042 (command 0xFE)
 *   "exit N"   -> exits with status N through the debug-exit port
 *   "disk"     -> reads 4 KiB from sector 0 of the first virtio-blk disk and writes one
 *                 sector at sector 8, polling; prints "disk: ok" or "disk: failed ..."
 * Ctrl-Alt-Del on the PS/2 keyboard (IRQ 1, scancodes from port 0x60, set 1 or set 2)
 * prints "ctrl-alt-del: powering off" and exits 0; with `cad=reset` on the command line
 * it prints "ctrl-alt-del: rebooting" and resets through the i8042 instead, as Linux does.
 * With `aps=1` on the command line every AP is started too and works while it runs: at
 * each beat the BSP checks a 64 KiB RAM pattern of its own and each AP's page, then sends
 * every AP an IPI, on which the AP counts and rewrites its page; the beat line then reads
 * "tick N cpus C1,C2,... ram ok" (the APs' counts) or "tick N ram FAIL ...".
 * With `fill=N`, N MiB of RAM from 16 MiB up get a pattern word at the start of each page
 * at boot, and each beat reads them all back (so every page is in use, and resident in a
 * VMM that maps a saved memory file), adding " fill ok" or " fill FAIL" to the tick line.
 */
#include "runtime/virtio.h"

#define TICKS_HZ 100
#define TICKS_PER_BEAT 50

#define I8042_DATA 0x60
#define I8042_STATUS 0x64
#define I8042_RESET 0xfe
#define STATUS_OUTPUT_FULL 0x01
#define KEYBOARD_VECTOR 0x25
#define KEYBOARD_ISA_IRQ 1

/* ---- keyboard: Ctrl and Alt held, then Del pressed ---- */
static volatile bool ctrl_alt_del;
static bool extended, releasing, ctrl_down, alt_down;

/* One scancode byte, set 1 (translated) or set 2 (raw); their codes do not collide here. */
static void on_scancode(u8 code) {
  if (code == 0xe0) {
    extended = true;
    return;
  }
  if (code == 0xf0) { /* set 2 break prefix */
    releasing = true;
    return;
  }
  bool down = !releasing && !(code & 0x80);
  u8 key = code & 0x7f;
  if (releasing) key = code;
  if (key == 0x14 || key == 0x1d) ctrl_down = down;          /* Ctrl: set 2 0x14, set 1 0x1d */
  else if (key == 0x11 || key == 0x38) alt_down = down;      /* Alt: set 2 0x11, set 1 0x38 */
  else if (extended && (key == 0x71 || key == 0x53) && down) /* Del: E0 71 / E0 53 */
    if (ctrl_down && alt_down) ctrl_alt_del = true;
  extended = false;
  releasing = false;
}

static void on_keyboard(struct interrupt_frame *frame) {
  (void)frame;
  for (u32 i = 0; i < 16 && (inb(I8042_STATUS) & STATUS_OUTPUT_FULL); i++) on_scancode(inb(I8042_DATA));
}

/* ---- aps=1: work for every CPU, and RAM patterns checked as it runs ---- */
#define AP_VECTOR 0x28
#define PATTERN_WORDS (64 * 1024 / 8)
#define PAGE_WORDS (4096 / 8)
static bool with_aps;
static u32 ap_count;
static u8 ap_apic_ids[MAX_CPUS];
static volatile u64 ap_counts[MAX_CPUS];
static u64 ap_pages[MAX_CPUS][PAGE_WORDS] __attribute__((aligned(4096)));
static u64 bsp_pattern[PATTERN_WORDS];

static const char *fill_check(void);

static u64 pattern_word(u64 seed, u32 i) { return seed * 0x9e3779b97f4a7c15ull ^ i; }

static void on_ap_ipi(struct interrupt_frame *frame) {
  (void)frame;
  u8 id = lapic_id();
  for (u32 n = 0; n < ap_count; n++) {
    if (ap_apic_ids[n] != id) continue;
    u64 count = ap_counts[n] + 1;
    for (u32 i = 0; i < PAGE_WORDS; i++) ap_pages[n][i] = pattern_word(count << 8 | n, i);
    __atomic_store_n(&ap_counts[n], count, __ATOMIC_RELEASE);
  }
}

static void on_ap(u32 cpu_index, u8 apic_id) {
  (void)cpu_index;
  (void)apic_id;
  for (;;) cpu_wait_for_interrupt();
}

static void start_aps(const struct cpu_topology *cpus) {
  for (u32 i = 0; i < cpus->count && ap_count < MAX_CPUS; i++)
    if (cpus->apic_ids[i] != cpus->bsp_apic_id) ap_apic_ids[ap_count++] = cpus->apic_ids[i];
  for (u32 i = 0; i < PATTERN_WORDS; i++) bsp_pattern[i] = pattern_word(0xb5b, i);
  interrupts_set_handler(AP_VECTOR, on_ap_ipi);
  u32 started = smp_start_aps(on_ap, false);
  printf("domain: %u of %u aps started\n", started, ap_count);
}

/* Checks every pattern, then has every AP count once more; prints the beat's line. */
static void beat_with_aps(u64 beat) {
  for (u32 i = 0; i < PATTERN_WORDS; i++) {
    if (bsp_pattern[i] != pattern_word(0xb5b, i)) {
      printf("tick %lu ram FAIL bsp word %u\n", beat, i);
      return;
    }
  }
  char counts[MAX_CPUS * 12];
  u32 at = 0;
  for (u32 n = 0; n < ap_count; n++) {
    u64 count = __atomic_load_n(&ap_counts[n], __ATOMIC_ACQUIRE);
    for (u32 i = 0; count > 0 && i < PAGE_WORDS; i++) {
      if (ap_pages[n][i] != pattern_word(count << 8 | n, i)) {
        printf("tick %lu ram FAIL ap %u word %u\n", beat, n + 1, i);
        return;
      }
    }
    char digits[12];
    u32 d = 0;
    do digits[d++] = (char)('0' + count % 10), count /= 10;
    while (count && d < sizeof digits);
    if (n) counts[at++] = ',';
    while (d) counts[at++] = digits[--d];
  }
  counts[at] = 0;
  printf("tick %lu cpus %s ram ok%s\n", beat, counts, fill_check());
  for (u32 n = 0; n < ap_count; n++) lapic_send_ipi(ap_apic_ids[n], AP_VECTOR);
}

/* ---- fill=N: pages in use, read back at each beat ---- */
#define FILL_BASE (16ull << 20)
static u64 fill_pages;

static u64 fill_word(u64 page) { return 0xf111000000000000ull | page; }

static void fill_start(u64 mib) {
  u64 limit = boot_total_ram();
  fill_pages = mib << 8;
  if (FILL_BASE + (fill_pages << 12) > limit) fill_pages = limit > FILL_BASE ? (limit - FILL_BASE) >> 12 : 0;
  for (u64 p = 0; p < fill_pages; p++) *(volatile u64 *)(FILL_BASE + (p << 12)) = fill_word(p);
  printf("domain: %lu pages filled\n", fill_pages);
}

static const char *fill_check(void) {
  if (!fill_pages) return "";
  for (u64 p = 0; p < fill_pages; p++)
    if (*(volatile u64 *)(FILL_BASE + (p << 12)) != fill_word(p)) return " fill FAIL";
  return " fill ok";
}

/* ---- commands ---- */
static u32 parse_u32(const char *s) {
  u32 v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (u32)(*s++ - '0');
  return v;
}

struct blk_header {
  u32 type;
  u32 reserved;
  u64 sector;
};
static struct virtio_device *disk;
static struct virtq *disk_queue;
static struct blk_header disk_header;
static volatile u8 disk_status;
static u8 disk_buffer[4096] __attribute__((aligned(512)));

static bool disk_request(u32 type, u64 sector, u32 length) {
  disk_header = (struct blk_header){.type = type, .sector = sector};
  disk_status = 0xee;
  struct virtq_buffer b[3] = {
      {&disk_header, sizeof disk_header, false},
      {disk_buffer, length, type == 0},
      {(const void *)&disk_status, 1, true},
  };
  return virtq_submit_and_wait(disk_queue, b, 3, 10000) >= 0 && disk_status == 0;
}

static void disk_command(void) {
  if (!disk) {
    disk = virtio_find(VIRTIO_ID_BLOCK, virtio_cmdline_transport());
    if (!disk || !virtio_init(disk, 0) || !(disk_queue = virtq_setup(disk, 0, 16))) {
      disk = NULL;
      print("disk: failed, no usable virtio-blk device\n");
      return;
    }
    virtio_driver_ok(disk);
  }
  if (!disk_request(0, 0, sizeof disk_buffer)) return print("disk: failed to read\n");
  memset(disk_buffer, 0x5a, 512);
  if (!disk_request(1, 8, 512)) return print("disk: failed to write\n");
  print("disk: ok\n");
}

static void command(const char *line) {
  printf("echo: %s\n", line);
  if (str_equal(line, "reset")) {
    print("domain: resetting\n");
    outb(I8042_STATUS, I8042_RESET);
  } else if (strncmp(line, "exit ", 5) == 0) {
    u32 status = parse_u32(line + 5);
    printf("domain: exiting with status %u\n", status);
    exit((int)status);
  } else if (str_equal(line, "disk")) {
    disk_command();
  }
}

int main(void) {
  char cad[16];
  /* cad=reset: answer Ctrl-Alt-Del with a reset, as Linux's init does by default. */
  bool reset_on_cad = cmdline_get("cad", cad, sizeof cad) && str_equal(cad, "reset");
  const struct cpu_topology *cpus = cpus_discover();
  timer_start(TICKS_HZ);
  serial_input_start(cpus);
  interrupts_set_handler(KEYBOARD_VECTOR, on_keyboard);
  ioapic_route(cpus->ioapic_address, cpus->isa_irq_pin[KEYBOARD_ISA_IRQ], KEYBOARD_VECTOR, lapic_id());
  /* Drain what the controller may hold, so the next byte makes a fresh edge on IRQ 1. */
  while (inb(I8042_STATUS) & STATUS_OUTPUT_FULL) inb(I8042_DATA);
  print("domain guest up\n");
  with_aps = cmdline_has("aps");
  if (with_aps) start_aps(cpus);
  if (cmdline_has("fill")) fill_start(cmdline_get_u64("fill", 0));

  char line[128];
  u32 length = 0;
  u64 beats = 0;
  u64 next = TICKS_PER_BEAT;
  for (;;) {
    if (ctrl_alt_del) {
      if (reset_on_cad) {
        print("ctrl-alt-del: rebooting\n");
        outb(I8042_STATUS, I8042_RESET);
      }
      print("ctrl-alt-del: powering off\n");
      return 0;
    }
    u64 now = timer_ticks();
    if (now >= next) {
      if (with_aps) beat_with_aps(++beats);
      else printf("tick %lu%s\n", ++beats, fill_check());
      next = now - now % TICKS_PER_BEAT + TICKS_PER_BEAT;
    }
    char c;
    if (!serial_take(&c)) {
      /* Interrupts are off between the checks above and here only inside serial_take(). */
      irq_disable();
      if (!ctrl_alt_del && !serial_pending()) cpu_wait_for_interrupt();
      irq_enable();
      continue;
    }
    if (c != '\r' && c != '\n') {
      if (length < sizeof(line) - 1) line[length++] = c;
      continue;
    }
    if (length == 0) continue;
    line[length] = 0;
    length = 0;
    command(line);
  }
}
