/*
 * virtio_blk_log: a guest that writes its virtio-blk disk for ever and checks what it
 * wrote, for the save/restore tests (a save may cut it at any point).
 *
 * The disk holds a ring of `slots=N` 4 KiB slots (default 16). Write number W (from 0)
 * goes to slot W % N and holds W, its slot and bytes derived from W, with a checksum.
 * `depth=D` writes (default 4) are in flight at once, each from its own buffer, and a
 * buffer is refilled for a new write as soon as its write is acknowledged. After every N
 * acknowledged writes (a round) it reads every slot back and checks that each holds the
 * newest write of that slot, intact; it prints "blklog: round R ok, W writes acked" or a
 * "blklog: FAIL ..." line, and stops writing on a failure.
 *
 * So a lost acknowledged write shows as an older W in its slot, and a write done twice
 * (its chain served again after a restore, the buffer then holding a later write) shows
 * as a write in the wrong slot or a completion nobody waits for.
 * Command line: transport=pci|mmio irq=poll|msix|intx|irq slots=N depth=D.
 */
#include "runtime/virtio.h"

#define SLOT_BYTES 4096
#define SLOT_SECTORS (SLOT_BYTES / 512)
#define MAX_DEPTH 8
#define MAX_SLOTS 64
#define WAIT_MS 60000
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define MAGIC 0x676f6c6b6c62ull /* "blklog" */

struct blk_header {
  u32 type;
  u32 reserved;
  u64 sector;
};

/* One request: its header, its data, its status, and which write it carries. */
struct request {
  struct blk_header header;
  volatile u8 status;
  bool busy;
  u64 write;
};

static struct request requests[MAX_DEPTH];
static u8 buffers[MAX_DEPTH][SLOT_BYTES] __attribute__((aligned(4096)));
static u8 read_buffer[SLOT_BYTES] __attribute__((aligned(4096)));
static struct virtq *queue;
static u64 slots, depth;

static u64 checksum(const u64 *words, u32 count) {
  u64 sum = 0xcbf29ce484222325ull;
  for (u32 i = 0; i < count; i++) sum = (sum ^ words[i]) * 0x100000001b3ull;
  return sum;
}

/* The record of write `w`: magic, w, slot, filler from w, checksum in the last word. */
static void fill(u8 *buffer, u64 w) {
  u64 *words = (u64 *)buffer;
  u32 count = SLOT_BYTES / 8;
  words[0] = MAGIC;
  words[1] = w;
  words[2] = w % slots;
  for (u32 i = 3; i < count - 1; i++) words[i] = w * 0x9e3779b97f4a7c15ull + i;
  words[count - 1] = checksum(words, count - 1);
}

/* Whether `buffer` holds write `w` intact; prints why not. */
static bool check(const u8 *buffer, u64 slot, u64 w) {
  const u64 *words = (const u64 *)buffer;
  u32 count = SLOT_BYTES / 8;
  if (words[0] != MAGIC || words[count - 1] != checksum(words, count - 1)) {
    printf("blklog: FAIL slot %llu: bad record (checksum), expected write %llu\n",
           (unsigned long long)slot, (unsigned long long)w);
    return false;
  }
  if (words[1] != w || words[2] != slot) {
    printf("blklog: FAIL slot %llu holds write %llu (of slot %llu), expected write %llu\n",
           (unsigned long long)slot, (unsigned long long)words[1], (unsigned long long)words[2],
           (unsigned long long)w);
    return false;
  }
  for (u32 i = 3; i < count - 1; i++) {
    if (words[i] != w * 0x9e3779b97f4a7c15ull + i) {
      printf("blklog: FAIL slot %llu word %u is wrong\n", (unsigned long long)slot, i);
      return false;
    }
  }
  return true;
}

static bool submit(u32 r, u64 w) {
  struct request *req = &requests[r];
  fill(buffers[r], w);
  req->header = (struct blk_header){.type = BLK_T_OUT, .sector = (w % slots) * SLOT_SECTORS};
  req->status = 0xee;
  req->write = w;
  req->busy = true;
  struct virtq_buffer b[3] = {
      {&req->header, sizeof req->header, false},
      {buffers[r], SLOT_BYTES, false},
      {(const void *)&req->status, 1, true},
  };
  if (!virtq_add(queue, b, 3, req)) {
    print("blklog: FAIL the queue is full\n");
    return false;
  }
  return true;
}

/* Waits for one completion; the index of its request, or -1 (FAIL printed). */
static long complete_one(void) {
  u32 written = 0;
  struct request *req = virtq_wait_used(queue, &written, WAIT_MS);
  if (!req) {
    print("blklog: FAIL a write was not acknowledged in 60 s\n");
    return -1;
  }
  long r = req - requests;
  if (r < 0 || r >= (long)depth || !req->busy) {
    print("blklog: FAIL a completion for no request in flight (a request done twice?)\n");
    return -1;
  }
  if (req->status != 0) {
    printf("blklog: FAIL write %llu failed with status %u\n", (unsigned long long)req->write,
           req->status);
    return -1;
  }
  req->busy = false;
  return r;
}

static bool read_slot(u64 slot) {
  struct blk_header header = {.type = BLK_T_IN, .sector = slot * SLOT_SECTORS};
  volatile u8 status = 0xee;
  struct virtq_buffer b[3] = {
      {&header, sizeof header, false},
      {read_buffer, SLOT_BYTES, true},
      {(const void *)&status, 1, true},
  };
  if (virtq_submit_and_wait(queue, b, 3, WAIT_MS) < 0 || status != 0) {
    printf("blklog: FAIL reading slot %llu\n", (unsigned long long)slot);
    return false;
  }
  return true;
}

int main(void) {
  slots = cmdline_get_u64("slots", 16);
  depth = cmdline_get_u64("depth", 4);
  if (slots < 2 || slots > MAX_SLOTS || depth < 1 || depth > MAX_DEPTH || depth > slots) {
    print("blklog: FAIL slots must be 2-64 and depth 1-8, at most slots\n");
    return 1;
  }
  struct virtio_device *dev = virtio_find(VIRTIO_ID_BLOCK, virtio_cmdline_transport());
  if (!dev) {
    print("blklog: FAIL no virtio-blk device found\n");
    return 1;
  }
  if (!virtio_init(dev, 0) || !(queue = virtq_setup(dev, 0, 16))) return 1;
  const char *irq = virtio_cmdline_irq_mode();
  if (!virtio_enable_interrupts(dev, irq)) {
    printf("blklog: FAIL interrupt mode %s\n", irq);
    return 1;
  }
  virtio_driver_ok(dev);
  if (virtio_config_u64(dev, 0) < slots * SLOT_SECTORS) {
    print("blklog: FAIL the disk is smaller than the ring\n");
    return 1;
  }
  printf("blklog: writing %llu slots, %llu in flight, %s, irq %s\n", (unsigned long long)slots,
         (unsigned long long)depth, dev->location, dev->irq_mode);

  u64 next = 0, acked = 0;
  for (u32 r = 0; r < depth; r++)
    if (!submit(r, next++)) return 1;
  virtq_kick(queue);
  for (u64 round = 1;; round++) {
    /* Writes complete in any order; a round ends once `slots` more were acknowledged. */
    while (acked < round * slots) {
      long r = complete_one();
      if (r < 0) return 1;
      acked++;
      if (next < round * slots) {
        if (!submit(r, next++)) return 1;
        virtq_kick(queue);
      }
    }
    /* Nothing in flight: every slot must hold the newest write of that slot. */
    for (u64 slot = 0; slot < slots; slot++) {
      u64 newest = (round - 1) * slots + slot;
      if (!read_slot(slot) || !check(read_buffer, slot, newest)) return 1;
    }
    printf("blklog: round %llu ok, %llu writes acked\n", (unsigned long long)round,
           (unsigned long long)acked);
    for (u32 r = 0; r < depth; r++)
      if (!submit(r, next++)) return 1;
    virtq_kick(queue);
  }
}
