/*
 * virtio_rng: reads 64 bytes from a virtio-rng device twice and checks that each read is
 * complete and not all zero, and that the two differ. Command line: transport=pci|mmio
 * irq=poll|msix|intx|irq. Exit status 0 only if every check passed.
 */
#include "runtime/virtio.h"

#define RNG_BYTES 64
#define RNG_TIMEOUT_MS 10000

static u8 first[RNG_BYTES], second[RNG_BYTES];

static void print_hex(const char *label, const u8 *p, u32 n) {
  printf("virtio_rng: %s ", label);
  for (u32 i = 0; i < n; i++) printf("%02x", p[i]);
  print("\n");
}

/* Fills `out` completely; the device may return fewer bytes than asked, so loop. */
static u32 read_entropy(struct virtq *q, u8 *out, u32 n) {
  u32 got = 0;
  for (u32 rounds = 0; got < n && rounds < 16; rounds++) {
    struct virtq_buffer b = {out + got, n - got, true};
    long written = virtq_submit_and_wait(q, &b, 1, RNG_TIMEOUT_MS);
    if (written < 0) break;
    if (written > (long)(n - got)) written = (long)(n - got);
    got += (u32)written;
  }
  return got;
}

static bool all_zero(const u8 *p, u32 n) {
  for (u32 i = 0; i < n; i++) {
    if (p[i]) return false;
  }
  return true;
}

int main(void) {
  print("virtio_rng: start\n");
  struct virtio_device *dev = virtio_find(VIRTIO_ID_RNG, virtio_cmdline_transport());
  if (!dev) {
    print("FAIL no virtio-rng device found\n");
    return 1;
  }
  if (!virtio_init(dev, 0)) return 1;
  struct virtq *q = virtq_setup(dev, 0, 16);
  if (!q) return 1;
  const char *irq = virtio_cmdline_irq_mode();
  virtio_check(virtio_enable_interrupts(dev, irq), "interrupt mode %s set up", irq);
  virtio_driver_ok(dev);

  u32 got1 = read_entropy(q, first, RNG_BYTES);
  u32 got2 = read_entropy(q, second, RNG_BYTES);
  print_hex("first ", first, RNG_BYTES);
  print_hex("second", second, RNG_BYTES);
  virtio_check(got1 == RNG_BYTES && got2 == RNG_BYTES, "read %u and %u of %u bytes", got1, got2,
               RNG_BYTES);
  virtio_check(!all_zero(first, RNG_BYTES) && !all_zero(second, RNG_BYTES),
               "neither read is all zero");
  virtio_check(memcmp(first, second, RNG_BYTES) != 0, "the two reads differ");
  if (strncmp(dev->irq_mode, "poll", 5) != 0) {
    virtio_check(dev->irq_count > 0, "%u interrupts received (%s)", dev->irq_count, dev->irq_mode);
  }
  printf("virtio_rng: %s (%u failures)\n", virtio_failures ? "FAILED" : "all passed", virtio_failures);
  return virtio_failures ? 1 : 0;
}
