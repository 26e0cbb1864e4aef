/*
 * virtio_net_stream: the guest side of the guest-driven network benchmark. With `tx=N`
 * it sends N broadcast frames of `size=S` bytes (ethertype 0x88b5, default 1500) back to
 * back, keeping up to 64 in the transmit ring and polling the used ring; with `rx=N` it
 * posts 64 receive buffers and counts N frames of ethertype 0x88b5 from the host,
 * reposting each buffer at once and notifying every 16 (other frames are not counted). It prints what it moved
 * and exits 0; it prints "virtio_net_stream: start" just before the first frame, so the
 * host can time the frames alone from its serial output. bench/guest_net.ts times it on
 * Denovisor and on QEMU with the same tap.
 * Command line: tx=N | rx=N, size=S, transport=pci|mmio.
 */
#include "runtime/rt.h"
#include "runtime/virtio.h"

#define NET_HEADER_SIZE 12
#define RING 64
#define RX_BUFFER_SIZE 2048
#define ETHERTYPE_TEST 0x88b5
#define SPIN_LIMIT 200000000ull

static u8 tx_frame[NET_HEADER_SIZE + 1514];
static u8 rx_buffers[RING][RX_BUFFER_SIZE];

static int transmit(struct virtq *txq, u64 count, u32 size) {
  memset(tx_frame, 0, sizeof tx_frame); /* zero virtio_net_hdr: no offloads */
  u8 *frame = tx_frame + NET_HEADER_SIZE;
  memset(frame, 0xff, 6);
  frame[6] = 0x02;
  frame[11] = 0x01;
  frame[12] = ETHERTYPE_TEST >> 8;
  frame[13] = ETHERTYPE_TEST & 0xff;
  for (u32 i = 14; i < size; i++) frame[i] = (u8)i;
  struct virtq_buffer b = {tx_frame, NET_HEADER_SIZE + size, false};
  print("virtio_net_stream: start\n");
  u64 queued = 0, done = 0, spins = 0;
  while (done < count) {
    u32 added = 0;
    while (queued < count && queued - done < RING && virtq_add(txq, &b, 1, tx_frame)) {
      queued++;
      added++;
    }
    if (added) virtq_kick(txq);
    u32 written;
    bool progress = false;
    while (virtq_get_used(txq, &written)) {
      done++;
      progress = true;
    }
    if (progress) spins = 0;
    else if (++spins > SPIN_LIMIT) {
      printf("FAIL %llu of %llu frames sent, then none completed\n", (unsigned long long)done,
             (unsigned long long)count);
      return 1;
    }
  }
  printf("virtio_net_stream: sent %llu frames of %u bytes\n", (unsigned long long)count, size);
  return 0;
}

static int receive(struct virtq *rxq, u64 count) {
  for (u32 i = 0; i < RING; i++) {
    struct virtq_buffer b = {rx_buffers[i], RX_BUFFER_SIZE, true};
    virtq_add(rxq, &b, 1, rx_buffers[i]);
  }
  virtq_kick(rxq);
  print("virtio_net_stream: start\n");
  u64 received = 0, other = 0, spins = 0;
  while (received < count) {
    u32 written;
    u8 *buffer = virtq_get_used(rxq, &written);
    if (!buffer) {
      if (++spins > SPIN_LIMIT) {
        printf("FAIL %llu of %llu frames received, then none\n", (unsigned long long)received,
               (unsigned long long)count);
        return 1;
      }
      continue;
    }
    spins = 0;
    u8 *frame = buffer + NET_HEADER_SIZE;
    if (written >= NET_HEADER_SIZE + 14 && frame[12] == (ETHERTYPE_TEST >> 8) &&
        frame[13] == (ETHERTYPE_TEST & 0xff)) {
      received++;
    } else {
      other++;
    }
    struct virtq_buffer b = {buffer, RX_BUFFER_SIZE, true};
    virtq_add(rxq, &b, 1, buffer);
    if ((received + other) % 16 == 0) virtq_kick(rxq);
  }
  printf("virtio_net_stream: received %llu frames (%llu others)\n", (unsigned long long)received,
         (unsigned long long)other);
  return 0;
}

int main(void) {
  struct virtio_device *dev = virtio_find(VIRTIO_ID_NET, virtio_cmdline_transport());
  if (!dev) {
    print("FAIL no virtio-net device found\n");
    return 1;
  }
  if (!virtio_init(dev, 0)) return 1;
  struct virtq *rxq = virtq_setup(dev, 0, RING);
  struct virtq *txq = virtq_setup(dev, 1, RING);
  if (!rxq || !txq) return 1;
  virtio_driver_ok(dev);
  u64 tx = cmdline_get_u64("tx", 0);
  u64 rx = cmdline_get_u64("rx", 0);
  u32 size = (u32)cmdline_get_u64("size", 1500);
  if (size < 60 || size > 1514) {
    print("FAIL size must be 60 to 1514\n");
    return 1;
  }
  if (tx) return transmit(txq, tx, size);
  if (rx) return receive(rxq, rx);
  print("FAIL give tx=N or rx=N\n");
  return 1;
}
