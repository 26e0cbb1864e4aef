/*
 * virtio-mmio v2 transport (virtio 1.2, 4.2): devices announced on the command line in
 * Linux syntax, `virtio_mmio.device=<size>[KMG]@<base>:<irq>[:<id>]`, possibly several.
 * The windows must lie in the runtime's uncached identity map (3-4 GiB).
 */
#include "virtio.h"

#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEVICE_FEATURES 0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES 0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_INTERRUPT_STATUS 0x060
#define MMIO_INTERRUPT_ACK 0x064
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC 0x080
#define MMIO_QUEUE_DRIVER 0x090
#define MMIO_QUEUE_DEVICE 0x0a0
#define MMIO_CONFIG_GENERATION 0x0fc
#define MMIO_CONFIG 0x100
#define MMIO_MAGIC_VALUE 0x74726976u /* "virt" */

#define UNCACHED_START 0xc0000000ull
#define UNCACHED_END 0xfec00000ull

static struct virtio_device mmio_devices[VIRTIO_MAX_DEVICES];
static u32 mmio_device_count;

static volatile u32 *reg(struct virtio_device *d, u32 offset) {
  return (volatile u32 *)(d->mmio_base + offset);
}

static u8 mmio_get_status(struct virtio_device *d) { return (u8)*reg(d, MMIO_STATUS); }
static void mmio_set_status(struct virtio_device *d, u8 s) { *reg(d, MMIO_STATUS) = s; }
static u64 mmio_get_features(struct virtio_device *d) {
  *reg(d, MMIO_DEVICE_FEATURES_SEL) = 0;
  u64 low = *reg(d, MMIO_DEVICE_FEATURES);
  *reg(d, MMIO_DEVICE_FEATURES_SEL) = 1;
  u64 high = *reg(d, MMIO_DEVICE_FEATURES);
  return low | high << 32;
}
static void mmio_set_features(struct virtio_device *d, u64 f) {
  *reg(d, MMIO_DRIVER_FEATURES_SEL) = 0;
  *reg(d, MMIO_DRIVER_FEATURES) = (u32)f;
  *reg(d, MMIO_DRIVER_FEATURES_SEL) = 1;
  *reg(d, MMIO_DRIVER_FEATURES) = (u32)(f >> 32);
}
static u16 mmio_queue_max_size(struct virtio_device *d, u16 index) {
  *reg(d, MMIO_QUEUE_SEL) = index;
  if (*reg(d, MMIO_QUEUE_READY)) return 0; /* already in use: the driver forgot a reset */
  u32 max = *reg(d, MMIO_QUEUE_NUM_MAX);
  return max > 0xffff ? 0xffff : (u16)max;
}
static void write64(struct virtio_device *d, u32 offset, u64 v) {
  *reg(d, offset) = (u32)v;
  *reg(d, offset + 4) = (u32)(v >> 32);
}
static bool mmio_queue_enable(struct virtio_device *d, struct virtq *q) {
  *reg(d, MMIO_QUEUE_SEL) = q->index;
  *reg(d, MMIO_QUEUE_NUM) = q->size;
  write64(d, MMIO_QUEUE_DESC, (u64)q->desc);
  write64(d, MMIO_QUEUE_DRIVER, (u64)q->avail);
  write64(d, MMIO_QUEUE_DEVICE, (u64)q->used);
  *reg(d, MMIO_QUEUE_READY) = 1;
  return *reg(d, MMIO_QUEUE_READY) == 1;
}
static void mmio_notify(struct virtio_device *d, struct virtq *q) {
  *reg(d, MMIO_QUEUE_NOTIFY) = q->index;
}
static u32 mmio_config_read(struct virtio_device *d, u32 offset, u32 width) {
  u64 a = d->mmio_base + MMIO_CONFIG + offset;
  return width == 1 ? *(volatile u8 *)a : width == 2 ? *(volatile u16 *)a : *(volatile u32 *)a;
}
static void mmio_config_write(struct virtio_device *d, u32 offset, u32 width, u32 value) {
  u64 a = d->mmio_base + MMIO_CONFIG + offset;
  if (width == 1) *(volatile u8 *)a = (u8)value;
  else if (width == 2) *(volatile u16 *)a = (u16)value;
  else *(volatile u32 *)a = value;
}
static u32 mmio_config_generation(struct virtio_device *d) {
  return *reg(d, MMIO_CONFIG_GENERATION);
}
static u32 mmio_read_isr(struct virtio_device *d) {
  u32 status = *reg(d, MMIO_INTERRUPT_STATUS);
  if (status) *reg(d, MMIO_INTERRUPT_ACK) = status;
  return status;
}
static bool mmio_enable_interrupts(struct virtio_device *d, const char *mode, u8 vector) {
  if (strncmp(mode, "irq", 4) != 0 && strncmp(mode, "intx", 5) != 0) {
    printf("virtio-mmio: unknown irq mode %s (poll or irq)\n", mode);
    return false;
  }
  const struct cpu_topology *cpus = cpus_discover();
  /* ISA lines go through the MP table's overrides; GSIs above 15 map to pins 1:1. */
  u32 pin = d->mmio_irq < 16 ? cpus->isa_irq_pin[d->mmio_irq] : d->mmio_irq;
  if (pin >= 24) {
    printf("virtio-mmio: irq %u is beyond the first IOAPIC\n", d->mmio_irq);
    return false;
  }
  ioapic_route(cpus->ioapic_address, pin, vector, lapic_id());
  printf("virtio-mmio: irq %u on IOAPIC pin %u (edge), vector 0x%x\n", d->mmio_irq, pin, vector);
  return true;
}

static const struct virtio_transport_ops mmio_ops = {
    .name = "virtio-mmio v2",
    .get_status = mmio_get_status,
    .set_status = mmio_set_status,
    .get_features = mmio_get_features,
    .set_features = mmio_set_features,
    .queue_max_size = mmio_queue_max_size,
    .queue_enable = mmio_queue_enable,
    .notify = mmio_notify,
    .config_read = mmio_config_read,
    .config_write = mmio_config_write,
    .config_generation = mmio_config_generation,
    .read_isr = mmio_read_isr,
    .enable_interrupts = mmio_enable_interrupts,
};

/* Parses a number (decimal or 0x-hex) with an optional K/M/G suffix; advances *p. */
static bool parse_number(const char **p, u64 *out, bool allow_suffix) {
  const char *s = *p;
  u32 base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  u64 v = 0;
  const char *start = s;
  for (;; s++) {
    u32 digit;
    if (*s >= '0' && *s <= '9') digit = (u32)(*s - '0');
    else if (base == 16 && *s >= 'a' && *s <= 'f') digit = (u32)(*s - 'a' + 10);
    else if (base == 16 && *s >= 'A' && *s <= 'F') digit = (u32)(*s - 'A' + 10);
    else break;
    v = v * base + digit;
  }
  if (s == start) return false;
  if (allow_suffix) {
    if (*s == 'K' || *s == 'k') v <<= 10, s++;
    else if (*s == 'M' || *s == 'm') v <<= 20, s++;
    else if (*s == 'G' || *s == 'g') v <<= 30, s++;
  }
  *out = v;
  *p = s;
  return true;
}

/* Calls fn for every well-formed `virtio_mmio.device=` entry of the command line. */
static void for_each_announced(void (*fn)(u64 base, u64 size, u32 irq)) {
  static const char key[] = "virtio_mmio.device=";
  const char *p = boot_cmdline();
  while (*p) {
    if ((p == boot_cmdline() || p[-1] == ' ') && strncmp(p, key, sizeof key - 1) == 0) {
      const char *s = p + sizeof key - 1;
      u64 size, base, irq;
      if (parse_number(&s, &size, true) && *s++ == '@' && parse_number(&s, &base, false) &&
          *s++ == ':' && parse_number(&s, &irq, false)) {
        fn(base, size, (u32)irq);
      } else {
        print("virtio-mmio: cannot parse a virtio_mmio.device= entry (SIZE@BASE:IRQ)\n");
      }
    }
    p++;
  }
}

static u16 wanted_id;
static struct virtio_device *found;

static void consider(u64 base, u64 size, u32 irq) {
  if (found || mmio_device_count >= VIRTIO_MAX_DEVICES) return;
  if (base < UNCACHED_START || base + size > UNCACHED_END || size < 0x200) {
    printf("virtio-mmio: 0x%llx (size 0x%llx) is outside the uncached identity map\n",
           (unsigned long long)base, (unsigned long long)size);
    return;
  }
  volatile u32 *regs = (volatile u32 *)base;
  u32 magic = regs[MMIO_MAGIC / 4], version = regs[MMIO_VERSION / 4];
  u32 id = regs[MMIO_DEVICE_ID / 4];
  if (magic != MMIO_MAGIC_VALUE) {
    printf("virtio-mmio: 0x%llx has magic 0x%x, not a virtio-mmio device\n",
           (unsigned long long)base, magic);
    return;
  }
  if (id == 0) return; /* an empty slot (QEMU microvm announces every slot) */
  if (version != 2) {
    printf("virtio-mmio: 0x%llx is version %u; only v2 (virtio 1.x) is supported\n",
           (unsigned long long)base, version);
    return;
  }
  if (id != wanted_id) return;
  struct virtio_device *d = &mmio_devices[mmio_device_count++];
  memset(d, 0, sizeof *d);
  d->ops = &mmio_ops;
  d->device_id = (u16)id;
  d->mmio_base = base;
  d->mmio_irq = irq;
  d->irq_mode = "poll";
  const char *hex = "0123456789abcdef";
  memcpy(d->location, "mmio 0x", 7);
  for (int i = 0; i < 8; i++) d->location[7 + i] = hex[(base >> (28 - 4 * i)) & 15];
  d->location[15] = '\0';
  found = d;
}

struct virtio_device *virtio_mmio_find(u16 device_id) {
  wanted_id = device_id;
  found = NULL;
  for_each_announced(consider);
  return found;
}
