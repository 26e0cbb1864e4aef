/*
 * Transport-independent virtio driver side: device initialisation and feature
 * negotiation, split virtqueues in a static pool, waiting for used buffers (polling or
 * interrupt-driven), and config-space reads guarded by the generation counter.
 */
#include "virtio.h"

#define PAGE_SIZE 4096
#define POOL_QUEUES 8
/* Vectors 0x40 + device slot; 0x22 is the wait watchdog (0x20/0x21 are the timer's). */
#define VIRTIO_FIRST_VECTOR 0x40
#define VIRTIO_WATCHDOG_VECTOR 0x22
#define LAPIC_CYCLES_PER_MS_DIV4 250000u
#define MAX_WATCHDOG_CHUNK_MS 16000u
#define CONFIG_GENERATION_RETRIES 16

u32 virtio_failures;

/* Each queue takes three pages: descriptor table, available ring, used ring. */
static u8 queue_pool[POOL_QUEUES][3 * PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static u32 queue_pool_used;

static struct virtio_device *interrupt_owner[VIRTIO_MAX_DEVICES];
static u32 interrupt_owner_count;

void virtio_check(bool ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  print(ok ? "PASS " : "FAIL ");
  vprintf(fmt, ap);
  print("\n");
  va_end(ap);
  if (!ok) virtio_failures++;
}

/*
 * Busy-waits on the LAPIC timer's current count (one-shot, masked, divide by 4 on KVM's
 * 1 GHz APIC bus): a time base that needs no interrupts and, unlike delay_us() (PIT
 * channel 2 behind port 0x61), exists on QEMU's microvm too.
 */
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3e0
#define LVT_MASKED (1u << 16)
#define LAPIC_CYCLES_PER_US_DIV4 250u
#define MAX_DELAY_CHUNK_US 10000000u

static void lapic_delay_us(u32 us) {
  const u64 lapic = LAPIC_DEFAULT_ADDRESS;
  while (us > 0) {
    u32 chunk = us > MAX_DELAY_CHUNK_US ? MAX_DELAY_CHUNK_US : us;
    us -= chunk;
    mmio_write32(lapic + LAPIC_TIMER_DIVIDE, 0x1);
    mmio_write32(lapic + LAPIC_LVT_TIMER, LVT_MASKED);
    mmio_write32(lapic + LAPIC_TIMER_INITIAL, chunk * LAPIC_CYCLES_PER_US_DIV4);
    while (mmio_read32(lapic + LAPIC_TIMER_CURRENT) != 0) cpu_relax();
  }
}

void virtio_sleep_ms(u32 ms) { lapic_delay_us(ms * 1000); }

const char *virtio_cmdline_transport(void) {
  static char value[16];
  if (!cmdline_get("transport", value, sizeof value)) return NULL;
  if (strncmp(value, "pci", 4) == 0 || strncmp(value, "mmio", 5) == 0) return value;
  printf("virtio: ignoring transport=%s (expected pci or mmio)\n", value);
  return NULL;
}

const char *virtio_cmdline_irq_mode(void) {
  static char value[16];
  if (!cmdline_get("irq", value, sizeof value)) return "poll";
  return value;
}

struct virtio_device *virtio_find(u16 device_id, const char *transport) {
  struct virtio_device *dev = NULL;
  if (!transport || strncmp(transport, "pci", 4) == 0) dev = virtio_pci_find(device_id);
  if (!dev && (!transport || strncmp(transport, "mmio", 5) == 0)) {
    dev = virtio_mmio_find(device_id);
  }
  if (!dev) printf("virtio: no device of type %u (cmdline: %s)\n", device_id, boot_cmdline());
  if (dev) {
    lapic_enable(); /* the LAPIC timer is this library's clock */
    dev->irq_mode = "poll";
    printf("virtio: device type %u at %s (%s)\n", device_id, dev->location, dev->ops->name);
  }
  return dev;
}

void virtio_reset(struct virtio_device *dev) {
  dev->ops->set_status(dev, 0);
  /* The device may take a moment to finish the reset: it reads 0 when done. */
  for (u32 i = 0; i < 1000 && dev->ops->get_status(dev) != 0; i++) lapic_delay_us(100);
}

static u64 offered_features;

u64 virtio_offered_features(struct virtio_device *dev) {
  (void)dev;
  return offered_features;
}

bool virtio_init(struct virtio_device *dev, u64 wanted_features) {
  virtio_reset(dev);
  dev->ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
  dev->ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
  u64 offered = dev->ops->get_features(dev);
  offered_features = offered;
  printf("virtio: offered features 0x%llx\n", (unsigned long long)offered);
  if (!((offered >> VIRTIO_F_VERSION_1) & 1)) {
    virtio_check(false, "device offers VIRTIO_F_VERSION_1 (legacy-only device)");
    dev->ops->set_status(dev, VIRTIO_STATUS_FAILED);
    return false;
  }
  dev->features = (wanted_features | 1ull << VIRTIO_F_VERSION_1) & offered;
  dev->ops->set_features(dev, dev->features);
  u8 status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
  dev->ops->set_status(dev, status);
  if (!(dev->ops->get_status(dev) & VIRTIO_STATUS_FEATURES_OK)) {
    virtio_check(false, "device accepted features 0x%llx (FEATURES_OK did not stick)",
                 (unsigned long long)dev->features);
    dev->ops->set_status(dev, VIRTIO_STATUS_FAILED);
    return false;
  }
  printf("virtio: negotiated features 0x%llx\n", (unsigned long long)dev->features);
  return true;
}

struct virtq *virtq_setup(struct virtio_device *dev, u16 index, u16 max_size) {
  if (index >= VIRTIO_MAX_QUEUES || queue_pool_used >= POOL_QUEUES) {
    virtio_check(false, "queue %u fits the driver's static pool", index);
    return NULL;
  }
  u16 device_max = dev->ops->queue_max_size(dev, index);
  if (device_max == 0) {
    virtio_check(false, "device has queue %u", index);
    return NULL;
  }
  u16 size = device_max;
  if (size > max_size) size = max_size;
  if (size > VIRTQ_MAX_SIZE) size = VIRTQ_MAX_SIZE;
  /* Split queue sizes must be powers of two: round down. */
  while (size & (size - 1)) size &= (u16)(size - 1);
  u8 *memory = queue_pool[queue_pool_used++];
  memset(memory, 0, 3 * PAGE_SIZE);
  struct virtq *q = &dev->queues[index];
  memset(q, 0, sizeof *q);
  q->dev = dev;
  q->index = index;
  q->size = size;
  q->desc = (volatile struct virtq_desc *)memory;
  q->avail = (volatile struct virtq_avail *)(memory + PAGE_SIZE);
  q->used = (volatile struct virtq_used *)(memory + 2 * PAGE_SIZE);
  for (u16 i = 0; i < size; i++) q->desc[i].next = (u16)(i + 1);
  q->num_free = size;
  q->free_head = 0;
  if (!dev->ops->queue_enable(dev, q)) {
    virtio_check(false, "device enables queue %u (size %u)", index, size);
    return NULL;
  }
  if (index + 1 > dev->queue_count) dev->queue_count = (u16)(index + 1);
  return q;
}

void virtio_driver_ok(struct virtio_device *dev) {
  dev->ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void on_device_interrupt(struct interrupt_frame *frame) {
  u32 slot = (u32)frame->vector - VIRTIO_FIRST_VECTOR;
  if (slot >= interrupt_owner_count) return;
  struct virtio_device *dev = interrupt_owner[slot];
  dev->irq_count++;
  /* MSI-X needs no acknowledgement; INTx and virtio-mmio lines drop when ISR is read. */
  if (strncmp(dev->irq_mode, "msix", 5) != 0) dev->isr_seen |= dev->ops->read_isr(dev);
}

bool virtio_enable_interrupts(struct virtio_device *dev, const char *mode) {
  if (strncmp(mode, "poll", 5) == 0) return true;
  if (interrupt_owner_count >= VIRTIO_MAX_DEVICES) return false;
  u8 vector = (u8)(VIRTIO_FIRST_VECTOR + interrupt_owner_count);
  pic_disable();
  lapic_enable();
  interrupts_set_handler(vector, on_device_interrupt);
  if (!dev->ops->enable_interrupts(dev, mode, vector)) {
    interrupts_set_handler(vector, NULL);
    return false;
  }
  interrupt_owner[interrupt_owner_count++] = dev;
  dev->irq_vector = vector;
  dev->irq_mode = mode;
  return true;
}

u32 virtio_config_u32(struct virtio_device *dev, u32 offset) {
  return dev->ops->config_read(dev, offset, 4);
}
u16 virtio_config_u16(struct virtio_device *dev, u32 offset) {
  return (u16)dev->ops->config_read(dev, offset, 2);
}
u8 virtio_config_u8(struct virtio_device *dev, u32 offset) {
  return (u8)dev->ops->config_read(dev, offset, 1);
}
u64 virtio_config_u64(struct virtio_device *dev, u32 offset) {
  /* Two 32-bit halves are only consistent if the generation did not change between. */
  for (u32 i = 0; i < CONFIG_GENERATION_RETRIES; i++) {
    u32 before = dev->ops->config_generation(dev);
    u64 low = dev->ops->config_read(dev, offset, 4);
    u64 high = dev->ops->config_read(dev, offset + 4, 4);
    if (dev->ops->config_generation(dev) == before) return low | high << 32;
  }
  virtio_check(false, "config generation settles while reading offset %u", offset);
  return 0;
}
void virtio_config_write_u32(struct virtio_device *dev, u32 offset, u32 value) {
  dev->ops->config_write(dev, offset, 4, value);
}

bool virtq_add(struct virtq *q, const struct virtq_buffer *buffers, u32 count, void *cookie) {
  if (count == 0 || count > q->num_free || !cookie) return false;
  u16 head = q->free_head;
  u16 index = head;
  u16 last = head;
  for (u32 i = 0; i < count; i++) {
    volatile struct virtq_desc *d = &q->desc[index];
    d->addr = (u64)buffers[i].address;
    d->len = buffers[i].length;
    d->flags = (u16)((buffers[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) |
                     (i + 1 < count ? VIRTQ_DESC_F_NEXT : 0));
    last = index;
    index = d->next;
  }
  q->free_head = q->desc[last].next;
  q->num_free = (u16)(q->num_free - count);
  q->cookies[head] = cookie;
  q->chain_length[head] = (u16)count;
  q->avail->ring[q->avail->idx % q->size] = head;
  virtio_mb(); /* the ring entry is visible before the index that publishes it */
  q->avail->idx = (u16)(q->avail->idx + 1);
  return true;
}

void virtq_kick(struct virtq *q) {
  virtio_mb();
  q->dev->ops->notify(q->dev, q);
}

void *virtq_get_used(struct virtq *q, u32 *written) {
  if (q->last_used == q->used->idx) return NULL;
  virtio_mb(); /* read the element only after seeing the index */
  volatile struct virtq_used_elem *e = &q->used->ring[q->last_used % q->size];
  u32 id = e->id;
  u32 len = e->len;
  q->last_used = (u16)(q->last_used + 1);
  if (id >= q->size || !q->cookies[id]) {
    virtio_check(false, "device returned a valid used id on queue %u (got %u)", q->index, id);
    return NULL;
  }
  void *cookie = q->cookies[id];
  q->cookies[id] = NULL;
  /* Return the chain to the free list (the device never rewrites descriptors). */
  u16 last = (u16)id;
  for (u16 i = 1; i < q->chain_length[id]; i++) last = q->desc[last].next;
  q->desc[last].next = q->free_head;
  q->free_head = (u16)id;
  q->num_free = (u16)(q->num_free + q->chain_length[id]);
  if (written) *written = len;
  return cookie;
}

static volatile bool watchdog_fired;

static void on_watchdog(struct interrupt_frame *frame) {
  (void)frame;
  watchdog_fired = true;
}

static void *wait_with_interrupts(struct virtq *q, u32 *written, u32 timeout_ms) {
  interrupts_set_handler(VIRTIO_WATCHDOG_VECTOR, on_watchdog);
  while (timeout_ms > 0) {
    u32 chunk = timeout_ms > MAX_WATCHDOG_CHUNK_MS ? MAX_WATCHDOG_CHUNK_MS : timeout_ms;
    timeout_ms -= chunk;
    watchdog_fired = false;
    lapic_timer_oneshot(VIRTIO_WATCHDOG_VECTOR, chunk * LAPIC_CYCLES_PER_MS_DIV4);
    for (;;) {
      /* Check with interrupts off, then sti;hlt: no wake-up slips between the two. */
      irq_disable();
      void *cookie = virtq_get_used(q, written);
      if (cookie) {
        lapic_timer_stop();
        irq_enable();
        return cookie;
      }
      if (watchdog_fired) break;
      cpu_wait_for_interrupt();
    }
    irq_enable();
  }
  lapic_timer_stop();
  return NULL;
}

void *virtq_wait_used(struct virtq *q, u32 *written, u32 timeout_ms) {
  if (strncmp(q->dev->irq_mode, "poll", 5) != 0) return wait_with_interrupts(q, written, timeout_ms);
  u64 waited_us = 0;
  u32 step_us = 20;
  for (;;) {
    void *cookie = virtq_get_used(q, written);
    if (cookie) return cookie;
    if (waited_us >= (u64)timeout_ms * 1000) return NULL;
    lapic_delay_us(step_us);
    waited_us += step_us;
    if (step_us < 1000) step_us *= 2;
  }
}

long virtq_submit_and_wait(struct virtq *q, const struct virtq_buffer *buffers, u32 count,
                           u32 timeout_ms) {
  /* The first buffer's address is a unique cookie for this synchronous request. */
  void *cookie = (void *)buffers[0].address;
  if (!virtq_add(q, buffers, count, cookie)) return -1;
  virtq_kick(q);
  u32 written = 0;
  void *got = virtq_wait_used(q, &written, timeout_ms);
  if (got != cookie) return -1;
  return written;
}
