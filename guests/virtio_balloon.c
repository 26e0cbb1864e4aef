/*
 * virtio_balloon: reports the balloon's config (num_pages, actual), touches `pages=N`
 * (default 256, at most 4096) pages of its own RAM, inflates the balloon with their page
 * frame numbers, sets `actual`, waits `wait_ms=` (default 2000, time for the host to see
 * its RSS drop), deflates them again, sets `actual` back to 0 and checks the pages are
 * usable again. The stats queue gets one buffer (memory totals) right after DRIVER_OK.
 * Command line: transport=pci|mmio irq=poll|msix|intx|irq pages=N wait_ms=MS.
 * Exit status 0 only if every check passed.
 */
#include "runtime/virtio.h"

#define BALLOON_F_MUST_TELL_HOST 0
#define BALLOON_F_STATS_VQ 1
#define BALLOON_PAGE 4096ull
#define MAX_PAGES 4096
#define PFNS_PER_BUFFER 256
#define TIMEOUT_MS 10000
#define STAT_MEMFREE 4
#define STAT_MEMTOT 5
#define STAT_AVAIL 6
#define TOUCH_MAGIC 0x62616c6c6f6f6e00ull /* "balloon\0" */

struct balloon_stat {
  u16 tag;
  u64 value;
} __attribute__((packed));

extern char __bss_end[];
static u32 pfns[MAX_PAGES];
static struct balloon_stat stats[3];

/* The pages start 2 MiB past the end of this image, inside one RAM entry of the map. */
static u64 pick_pages(u32 count) {
  u64 start = ((u64)__bss_end + (4ull << 20) - 1) & ~((2ull << 20) - 1);
  u32 entries;
  const struct hvm_memmap_entry *map = boot_memmap(&entries);
  for (u32 i = 0; map && i < entries; i++) {
    if (map[i].type == 1 && map[i].addr <= start &&
        start + count * BALLOON_PAGE <= map[i].addr + map[i].size) {
      return start;
    }
  }
  return 0;
}

static void touch(u64 base, u32 count, u64 salt) {
  for (u32 i = 0; i < count; i++) *(volatile u64 *)(base + i * BALLOON_PAGE) = TOUCH_MAGIC ^ salt ^ i;
}

static bool touched(u64 base, u32 count, u64 salt) {
  for (u32 i = 0; i < count; i++) {
    if (*(volatile u64 *)(base + i * BALLOON_PAGE) != (TOUCH_MAGIC ^ salt ^ i)) return false;
  }
  return true;
}

static bool send_pfns(struct virtq *q, u32 count) {
  for (u32 done = 0; done < count; done += PFNS_PER_BUFFER) {
    u32 n = count - done < PFNS_PER_BUFFER ? count - done : PFNS_PER_BUFFER;
    struct virtq_buffer b = {&pfns[done], n * 4, false};
    if (virtq_submit_and_wait(q, &b, 1, TIMEOUT_MS) < 0) return false;
  }
  return true;
}

static void report(struct virtio_device *dev, const char *when) {
  printf("virtio_balloon: %s: num_pages %u, actual %u\n", when, virtio_config_u32(dev, 0),
         virtio_config_u32(dev, 4));
}

int main(void) {
  print("virtio_balloon: start\n");
  struct virtio_device *dev = virtio_find(VIRTIO_ID_BALLOON, virtio_cmdline_transport());
  if (!dev) {
    print("FAIL no virtio-balloon device found\n");
    return 1;
  }
  if (!virtio_init(dev, 1ull << BALLOON_F_MUST_TELL_HOST | 1ull << BALLOON_F_STATS_VQ)) return 1;
  struct virtq *inflateq = virtq_setup(dev, 0, 16);
  struct virtq *deflateq = virtq_setup(dev, 1, 16);
  struct virtq *statsq = virtio_has(dev, BALLOON_F_STATS_VQ) ? virtq_setup(dev, 2, 16) : NULL;
  if (!inflateq || !deflateq) return 1;
  const char *irq = virtio_cmdline_irq_mode();
  virtio_check(virtio_enable_interrupts(dev, irq), "interrupt mode %s set up", irq);
  virtio_driver_ok(dev);
  report(dev, "at start");

  u32 count = (u32)cmdline_get_u64("pages", 256);
  if (count == 0 || count > MAX_PAGES) count = 256;
  u64 base = pick_pages(count);
  if (!base) {
    virtio_check(false, "%u pages of RAM past the image exist in the memory map", count);
    return 1;
  }

  if (statsq) {
    u64 total = boot_total_ram();
    stats[0] = (struct balloon_stat){STAT_MEMTOT, total};
    stats[1] = (struct balloon_stat){STAT_MEMFREE, total - count * BALLOON_PAGE};
    stats[2] = (struct balloon_stat){STAT_AVAIL, total - count * BALLOON_PAGE};
    struct virtq_buffer b = {stats, sizeof stats, false};
    virtio_check(virtq_add(statsq, &b, 1, stats), "stats buffer queued (MEMTOT %llu bytes)",
                 (unsigned long long)total);
    virtq_kick(statsq);
  } else {
    print("virtio_balloon: STATS_VQ not offered, no stats\n");
  }

  touch(base, count, 1);
  virtio_check(touched(base, count, 1), "touched %u pages at 0x%llx-0x%llx", count,
               (unsigned long long)base, (unsigned long long)(base + count * BALLOON_PAGE - 1));
  for (u32 i = 0; i < count; i++) pfns[i] = (u32)(base / BALLOON_PAGE + i);
  /* Lets the host measure its RSS with the pages touched, before they are given back. */
  u32 touched_wait_ms = (u32)cmdline_get_u64("touched_wait_ms", 0);
  printf("virtio_balloon: holding %u touched pages for %u ms\n", count, touched_wait_ms);
  virtio_sleep_ms(touched_wait_ms);

  virtio_check(send_pfns(inflateq, count), "inflated by %u pages (PFN 0x%x-0x%x)", count, pfns[0],
               pfns[count - 1]);
  virtio_config_write_u32(dev, 4, count);
  report(dev, "inflated");
  virtio_check(virtio_config_u32(dev, 4) == count, "actual reads back %u", count);

  u32 wait_ms = (u32)cmdline_get_u64("wait_ms", 2000);
  printf("virtio_balloon: holding %u inflated pages for %u ms\n", count, wait_ms);
  virtio_sleep_ms(wait_ms);
  if (statsq && virtq_get_used(statsq, NULL)) print("virtio_balloon: the device took the stats\n");

  virtio_check(send_pfns(deflateq, count), "deflated by %u pages", count);
  virtio_config_write_u32(dev, 4, 0);
  report(dev, "deflated");
  touch(base, count, 2);
  virtio_check(touched(base, count, 2), "the %u deflated pages are usable again", count);
  if (strncmp(dev->irq_mode, "poll", 5) != 0) {
    virtio_check(dev->irq_count > 0, "%u interrupts received (%s)", dev->irq_count, dev->irq_mode);
  }
  printf("virtio_balloon: %s (%u failures)\n", virtio_failures ? "FAILED" : "all passed",
         virtio_failures);
  return virtio_failures ? 1 : 0;
}
