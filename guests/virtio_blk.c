/*
 * virtio_blk: drives a virtio-blk disk end to end and prints PASS/FAIL lines. Writes
 * patterns to the first, middle and last sectors and through a multi-descriptor request,
 * reads them back, FLUSHes, DISCARDs and WRITE_ZEROes (when offered) then reads zeroes,
 * prints the GET_ID serial, and checks that a read past the end fails. With
 * `readonly=1` it checks instead that BLK_F_RO is offered and a write fails with IOERR
 * leaving the data unchanged. Command line: transport=pci|mmio irq=poll|msix|intx|irq.
 * Exit status 0 only if every check passed.
 */
#include "runtime/virtio.h"

#define BLK_F_SIZE_MAX 1
#define BLK_F_SEG_MAX 2
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9
#define BLK_F_DISCARD 13
#define BLK_F_WRITE_ZEROES 14
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_T_DISCARD 11
#define BLK_T_WRITE_ZEROES 13
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2
#define SECTOR 512
#define REQUEST_TIMEOUT_MS 10000
#define NO_STATUS 0xee

struct blk_header {
  u32 type;
  u32 reserved;
  u64 sector;
};
struct blk_segment {
  u64 sector;
  u32 num_sectors;
  u32 flags;
};

static struct virtq *queue;
static struct blk_header header;
static volatile u8 status;
static u8 write_buffer[8 * SECTOR] __attribute__((aligned(SECTOR)));
static u8 read_buffer[8 * SECTOR] __attribute__((aligned(SECTOR)));
static struct blk_segment segment;
static char serial[21];

/* One request: header, data pieces (all device-readable or all device-writable), status. */
static u8 request(u32 type, u64 sector, u8 *data, const u32 *piece_lengths, u32 pieces,
                  bool device_writes) {
  struct virtq_buffer b[8];
  u32 n = 0;
  header = (struct blk_header){.type = type, .sector = sector};
  status = NO_STATUS;
  b[n++] = (struct virtq_buffer){&header, sizeof header, false};
  u32 offset = 0;
  for (u32 i = 0; i < pieces && n < 7; i++) {
    b[n++] = (struct virtq_buffer){data + offset, piece_lengths[i], device_writes};
    offset += piece_lengths[i];
  }
  b[n++] = (struct virtq_buffer){(const void *)&status, 1, true};
  if (virtq_submit_and_wait(queue, b, n, REQUEST_TIMEOUT_MS) < 0) {
    printf("virtio_blk: request type %u sector %llu timed out\n", type, (unsigned long long)sector);
    return NO_STATUS;
  }
  return status;
}

static u8 read_sectors(u64 sector, u32 count) {
  u32 length = count * SECTOR;
  return request(BLK_T_IN, sector, read_buffer, &length, 1, true);
}
static u8 write_sectors(u64 sector, u32 count) {
  u32 length = count * SECTOR;
  return request(BLK_T_OUT, sector, write_buffer, &length, 1, false);
}

static void fill_pattern(u64 sector, u32 count, u8 seed) {
  for (u32 i = 0; i < count * SECTOR; i++) {
    write_buffer[i] = (u8)((sector + i / SECTOR) * 7 + i + seed);
  }
}

static bool all_zero(const u8 *p, u32 n) {
  for (u32 i = 0; i < n; i++) {
    if (p[i]) return false;
  }
  return true;
}

static void check_round_trip(const char *what, u64 sector, u32 count, u8 seed) {
  fill_pattern(sector, count, seed);
  u8 ws = write_sectors(sector, count);
  memset(read_buffer, 0, sizeof read_buffer);
  u8 rs = read_sectors(sector, count);
  bool same = memcmp(write_buffer, read_buffer, count * SECTOR) == 0;
  virtio_check(ws == BLK_S_OK && rs == BLK_S_OK && same,
               "%s sector %llu x%u: write status %u, read status %u, data %s", what,
               (unsigned long long)sector, count, ws, rs, same ? "matches" : "DIFFERS");
}

static void check_multi_descriptor(void) {
  const u64 sector = 8;
  fill_pattern(sector, 8, 0x5a);
  const u32 write_pieces[] = {1024, 2048, 512, 512};
  u8 ws = request(BLK_T_OUT, sector, write_buffer, write_pieces, 4, false);
  memset(read_buffer, 0, sizeof read_buffer);
  const u32 read_pieces[] = {2048, 1536, 512};
  u8 rs = request(BLK_T_IN, sector, read_buffer, read_pieces, 3, true);
  bool same = memcmp(write_buffer, read_buffer, 8 * SECTOR) == 0;
  virtio_check(ws == BLK_S_OK && rs == BLK_S_OK && same,
               "multi-descriptor write (4 pieces) and read (3 pieces) of sectors 8-15: "
               "status %u/%u, data %s",
               ws, rs, same ? "matches" : "DIFFERS");
}

static void check_zeroing(const char *what, u32 type, u64 sector) {
  fill_pattern(sector, 8, 0x33);
  u8 ws = write_sectors(sector, 8);
  segment = (struct blk_segment){.sector = sector, .num_sectors = 8};
  u32 length = sizeof segment;
  u8 ds = request(type, 0, (u8 *)&segment, &length, 1, false);
  memset(read_buffer, 0xff, sizeof read_buffer);
  u8 rs = read_sectors(sector, 8);
  bool zero = all_zero(read_buffer, 8 * SECTOR);
  virtio_check(ws == BLK_S_OK && ds == BLK_S_OK && rs == BLK_S_OK && zero,
               "%s sectors %llu-%llu: status %u, then read %s", what, (unsigned long long)sector,
               (unsigned long long)sector + 7, ds, zero ? "zeroes" : "NON-ZERO data");
}

static void check_get_id(void) {
  memset(serial, 0, sizeof serial);
  u32 length = 20;
  u8 s = request(BLK_T_GET_ID, 0, (u8 *)serial, &length, 1, true);
  virtio_check(s == BLK_S_OK, "GET_ID status %u, serial \"%s\"", s, serial);
}

static void check_read_only(u64 capacity) {
  virtio_check(virtio_has(queue->dev, BLK_F_RO), "read-only disk offers VIRTIO_BLK_F_RO");
  u8 before = read_sectors(0, 1);
  u8 original[SECTOR];
  memcpy(original, read_buffer, SECTOR);
  fill_pattern(0, 1, 0x77);
  u8 ws = write_sectors(0, 1);
  virtio_check(ws == BLK_S_IOERR, "write to a read-only disk fails with IOERR (status %u)", ws);
  u8 after = read_sectors(0, 1);
  bool unchanged = memcmp(original, read_buffer, SECTOR) == 0;
  virtio_check(before == BLK_S_OK && after == BLK_S_OK && unchanged,
               "read-only disk: sector 0 readable and unchanged after the write");
  if (capacity > 1) {
    u8 last = read_sectors(capacity - 1, 1);
    virtio_check(last == BLK_S_OK, "read-only disk: last sector readable (status %u)", last);
  }
}

int main(void) {
  print("virtio_blk: start\n");
  struct virtio_device *dev = virtio_find(VIRTIO_ID_BLOCK, virtio_cmdline_transport());
  if (!dev) {
    print("FAIL no virtio-blk device found\n");
    return 1;
  }
  u64 wanted = 1ull << BLK_F_RO | 1ull << BLK_F_BLK_SIZE | 1ull << BLK_F_FLUSH |
               1ull << BLK_F_DISCARD | 1ull << BLK_F_WRITE_ZEROES | 1ull << BLK_F_SEG_MAX |
               1ull << BLK_F_SIZE_MAX;
  if (!virtio_init(dev, wanted)) return 1;
  queue = virtq_setup(dev, 0, 64);
  if (!queue) return 1;
  const char *irq = virtio_cmdline_irq_mode();
  virtio_check(virtio_enable_interrupts(dev, irq), "interrupt mode %s set up", irq);
  virtio_driver_ok(dev);

  u64 capacity = virtio_config_u64(dev, 0);
  printf("virtio_blk: capacity %llu sectors (%llu bytes)\n", (unsigned long long)capacity,
         (unsigned long long)capacity * SECTOR);
  if (virtio_has(dev, BLK_F_BLK_SIZE)) printf("virtio_blk: blk_size %u\n", virtio_config_u32(dev, 20));
  if (virtio_has(dev, BLK_F_SEG_MAX)) printf("virtio_blk: seg_max %u\n", virtio_config_u32(dev, 12));
  virtio_check(capacity >= 128, "capacity %llu sectors is at least 128", (unsigned long long)capacity);
  if (capacity < 128) return 1;

  check_get_id();
  if (cmdline_get_u64("readonly", 0)) {
    check_read_only(capacity);
  } else {
    virtio_check(!virtio_has(dev, BLK_F_RO), "writable disk does not offer VIRTIO_BLK_F_RO");
    check_round_trip("first", 0, 1, 1);
    check_round_trip("middle", capacity / 2, 1, 2);
    check_round_trip("last", capacity - 1, 1, 3);
    check_round_trip("8-sector", capacity - 8, 8, 4);
    check_multi_descriptor();
    if (virtio_has(dev, BLK_F_FLUSH)) {
      u32 none = 0;
      u8 s = request(BLK_T_FLUSH, 0, NULL, &none, 0, false);
      virtio_check(s == BLK_S_OK, "FLUSH status %u", s);
    } else {
      print("virtio_blk: FLUSH not offered, skipped\n");
    }
    if (virtio_has(dev, BLK_F_DISCARD)) {
      check_zeroing("DISCARD", BLK_T_DISCARD, 64);
    } else {
      print("virtio_blk: DISCARD not offered, skipped\n");
    }
    if (virtio_has(dev, BLK_F_WRITE_ZEROES)) {
      check_zeroing("WRITE_ZEROES", BLK_T_WRITE_ZEROES, 72);
    } else {
      print("virtio_blk: WRITE_ZEROES not offered, skipped\n");
    }
  }
  u8 past_end = read_sectors(capacity, 1);
  virtio_check(past_end == BLK_S_IOERR, "read past the end fails with IOERR (status %u)", past_end);

  if (strncmp(dev->irq_mode, "poll", 5) != 0) {
    virtio_check(dev->irq_count > 0, "%u interrupts received (%s)", dev->irq_count, dev->irq_mode);
  }
  printf("virtio_blk: %s (%u failures)\n", virtio_failures ? "FAILED" : "all passed", virtio_failures);
  return virtio_failures ? 1 : 0;
}
