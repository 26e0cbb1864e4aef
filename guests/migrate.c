/*
 * migrate: the guest of the live-migration tests and benchmark.
 *
 * Fills a RAM region (from 16 MiB, `mib=N`, default 4) with a pattern (one 64-bit word
 * per page, a function of the page and of how often it was rewritten), then halts between
 * PIT ticks (100 Hz). On each tick it:
 *   - measures the TSC time since the previous wake-up; the longest gap of each beat is
 *     printed (a pause that the guest can see: its TSC kept running);
 *   - rewrites `dirty=P` pages (default 0) round-robin, so it dirties P * 400 KiB/s;
 *   - verifies `verify=V` pages (default 64) round-robin against the pattern.
 * Every 50 ticks (a beat, 0.5 s) it prints "tick N gap_us=G" (G: the longest gap in that
 * beat beyond one tick period); "ram: pass K ok" after each full verification and
 * "ram: BAD page P ..." on a mismatch. With `disk=1`, each beat also writes sector
 * 8 + N % 64 of the first virtio-blk disk with N, reads it back and reads the sector of the
 * previous beat again ("disk: BAD ..." on a mismatch, "disk: ok N" every 10 beats).
 * CPL0 code is emulated on this host (~2M instructions/s): one word per page keeps the
 * work per tick small.
 */
#include "runtime/virtio.h"

#define TICKS_HZ 100
#define TICKS_PER_BEAT 50
#define REGION_BASE 0x1000000ull
#define WORDS_PER_PAGE 512
#define DISK_FIRST_SECTOR 8
#define DISK_SECTORS 64

static volatile u64 *region;
static u32 pages;
/* Pages [0, cursor) were rewritten `sweep + 1` times, the rest `sweep` times. */
static u32 cursor;
static u64 sweep;

static inline u64 rdtsc(void) {
  u32 lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((u64)hi << 32) | lo;
}

static u64 expected(u32 page) {
  u64 rewrites = sweep + (page < cursor ? 1 : 0);
  return (u64)page * 0x9e3779b97f4a7c15ull + rewrites;
}

static void dirty_pages(u32 count) {
  for (u32 i = 0; i < count && pages; i++) {
    region[(u64)cursor * WORDS_PER_PAGE] += 1;
    if (++cursor == pages) {
      cursor = 0;
      sweep++;
    }
  }
}

static u32 verify_at;
static u64 passes;
static bool ram_bad;

static void verify_pages(u32 count) {
  for (u32 i = 0; i < count && pages && !ram_bad; i++) {
    u64 got = region[(u64)verify_at * WORDS_PER_PAGE];
    u64 want = expected(verify_at);
    if (got != want) {
      printf("ram: BAD page %u got %lx want %lx\n", verify_at, got, want);
      ram_bad = true;
      return;
    }
    if (++verify_at == pages) {
      verify_at = 0;
      printf("ram: pass %lu ok\n", ++passes);
    }
  }
}

/* ---- disk: one sector per beat, written then read back ---- */
struct blk_header {
  u32 type;
  u32 reserved;
  u64 sector;
};
static struct virtio_device *disk;
static struct virtq *disk_queue;
static struct blk_header disk_header;
static volatile u8 disk_status;
static u64 disk_buffer[64] __attribute__((aligned(512)));
static bool disk_bad;

static bool disk_request(u32 type, u64 sector) {
  disk_header = (struct blk_header){.type = type, .sector = sector};
  disk_status = 0xee;
  struct virtq_buffer b[3] = {
      {&disk_header, sizeof disk_header, false},
      {disk_buffer, sizeof disk_buffer, type == 0},
      {(const void *)&disk_status, 1, true},
  };
  return virtq_submit_and_wait(disk_queue, b, 3, 10000) >= 0 && disk_status == 0;
}

static bool disk_start(void) {
  disk = virtio_find(VIRTIO_ID_BLOCK, virtio_cmdline_transport());
  if (!disk || !virtio_init(disk, 0) || !(disk_queue = virtq_setup(disk, 0, 16))) {
    print("disk: BAD no usable virtio-blk device\n");
    return false;
  }
  virtio_driver_ok(disk);
  return true;
}

static bool disk_check(u64 beat) {
  u64 sector = DISK_FIRST_SECTOR + beat % DISK_SECTORS;
  for (u32 i = 0; i < 64; i++) disk_buffer[i] = beat;
  if (!disk_request(1, sector)) return printf("disk: BAD write of beat %lu\n", beat), false;
  memset(disk_buffer, 0, sizeof disk_buffer);
  if (!disk_request(0, sector)) return printf("disk: BAD read of beat %lu\n", beat), false;
  if (disk_buffer[0] != beat || disk_buffer[63] != beat) {
    return printf("disk: BAD beat %lu read back %lu\n", beat, disk_buffer[0]), false;
  }
  if (beat > 1) {
    u64 before = beat - 1;
    if (!disk_request(0, DISK_FIRST_SECTOR + before % DISK_SECTORS)) {
      return printf("disk: BAD read of beat %lu\n", before), false;
    }
    if (disk_buffer[0] != before) {
      return printf("disk: BAD beat %lu read back %lu\n", before, disk_buffer[0]), false;
    }
  }
  if (beat % 10 == 0) printf("disk: ok %lu\n", beat);
  return true;
}

int main(void) {
  u64 mib = cmdline_get_u64("mib", 4);
  u32 dirty = (u32)cmdline_get_u64("dirty", 0);
  u32 verify = (u32)cmdline_get_u64("verify", 64);
  bool use_disk = cmdline_get_u64("disk", 0) != 0;
  u64 ram = boot_total_ram();
  u64 room = ram > REGION_BASE ? ram - REGION_BASE : 0;
  if (mib * 1024 * 1024 > room) mib = room / (1024 * 1024);
  region = (volatile u64 *)REGION_BASE;
  pages = (u32)(mib * 256);
  for (u32 p = 0; p < pages; p++) region[(u64)p * WORDS_PER_PAGE] = expected(p);
  if (use_disk && !disk_start()) disk_bad = true;

  timer_start(TICKS_HZ);
  printf("migrate guest up: %lu MiB pattern, %u pages dirtied per tick\n", mib, dirty);
  /* TSC ticks per PIT tick, measured over the first beat. */
  u64 calibrate_from = timer_ticks();
  u64 calibrate_tsc = rdtsc();
  u64 tsc_per_tick = 0;
  u64 beats = 0;
  u64 next = calibrate_from + TICKS_PER_BEAT;
  u64 last_tick = timer_ticks();
  u64 last_tsc = rdtsc();
  u64 longest = 0;
  for (;;) {
    u64 now = timer_ticks();
    if (now == last_tick) {
      irq_disable();
      if (timer_ticks() == last_tick) cpu_wait_for_interrupt();
      irq_enable();
      continue;
    }
    u64 tsc = rdtsc();
    u64 gap = tsc - last_tsc;
    if (gap > longest) longest = gap;
    last_tsc = tsc;
    last_tick = now;
    dirty_pages(dirty);
    verify_pages(verify);
    if (now < next) continue;
    if (!tsc_per_tick) tsc_per_tick = (tsc - calibrate_tsc) / (now - calibrate_from);
    u64 tick_us = 1000000 / TICKS_HZ;
    u64 longest_us = tsc_per_tick ? longest * tick_us / tsc_per_tick : 0;
    printf("tick %lu gap_us=%lu\n", ++beats, longest_us > tick_us ? longest_us - tick_us : 0);
    longest = 0;
    if (use_disk && !disk_bad) disk_bad = !disk_check(beats);
    next = now - now % TICKS_PER_BEAT + TICKS_PER_BEAT;
    /* The prints and the disk took time: measure the next gap from here. */
    last_tsc = rdtsc();
  }
}
