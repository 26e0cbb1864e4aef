/*
 * virtio_blk_stream: the guest side of the guest-driven disk benchmark. Reads `mib=N`
 * MiB (default 16) from the start of a virtio-blk disk in 64 KiB requests, one in flight,
 * polling the used ring (the same on every VMM), adds up a checksum so the data is
 * really touched, prints it and exits 0. bench/guest_block.ts times it on Denovisor and
 * on QEMU with the same disk file. Command line: mib=N transport=pci|mmio.
 */
#include "runtime/rt.h"
#include "runtime/virtio.h"

#define SECTOR 512
#define REQUEST_BYTES (64 * 1024)
#define BLK_T_IN 0
#define TIMEOUT_MS 30000

struct blk_header {
  u32 type;
  u32 reserved;
  u64 sector;
};

static struct blk_header header;
static volatile u8 status;
static u8 data[REQUEST_BYTES] __attribute__((aligned(4096)));

int main(void) {
  struct virtio_device *dev = virtio_find(VIRTIO_ID_BLOCK, virtio_cmdline_transport());
  if (!dev) {
    print("FAIL no virtio-blk device found\n");
    return 1;
  }
  if (!virtio_init(dev, 0)) return 1;
  struct virtq *queue = virtq_setup(dev, 0, 64);
  if (!queue) return 1;
  virtio_driver_ok(dev);
  u64 capacity = virtio_config_u64(dev, 0);
  u64 mib = cmdline_get_u64("mib", 16);
  u64 requests = mib * 1024 * 1024 / REQUEST_BYTES;
  if (requests * (REQUEST_BYTES / SECTOR) > capacity) {
    printf("FAIL the disk has %llu sectors, fewer than %llu MiB\n", (unsigned long long)capacity,
           (unsigned long long)mib);
    return 1;
  }
  u64 checksum = 0;
  for (u64 i = 0; i < requests; i++) {
    header = (struct blk_header){.type = BLK_T_IN, .sector = i * (REQUEST_BYTES / SECTOR)};
    status = 0xee;
    struct virtq_buffer b[3] = {
        {&header, sizeof header, false},
        {data, REQUEST_BYTES, true},
        {(const void *)&status, 1, true},
    };
    if (virtq_submit_and_wait(queue, b, 3, TIMEOUT_MS) < 0 || status != 0) {
      printf("FAIL request %llu (status %u)\n", (unsigned long long)i, status);
      return 1;
    }
    checksum += data[0] + data[REQUEST_BYTES - 1];
  }
  printf("virtio_blk_stream: read %llu MiB, checksum %llu\n", (unsigned long long)mib,
         (unsigned long long)checksum);
  return 0;
}
