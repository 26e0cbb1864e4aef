/*
 * Modern virtio-pci transport (virtio 1.2, 4.1): finds devices 1af4:1040+type on bus 0,
 * walks the capability list for the common, notify, ISR and device-config structures,
 * makes sure their BARs sit in identity-mapped uncached memory (assigning them from a
 * free range at 0xc0000000+ when they are unassigned or above 4 GiB), enables memory
 * decoding and bus mastering, and optionally delivers interrupts through MSI-X or INTx.
 */
#include "virtio.h"

#define PCI_VENDOR_VIRTIO 0x1af4
#define PCI_DEVICE_MODERN_BASE 0x1040
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_POINTER 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR 3
#define VIRTIO_PCI_CAP_DEVICE 4
#define MSIX_ENABLE 0x8000
#define MSIX_FUNCTION_MASK 0x4000
#define VIRTIO_MSI_NO_VECTOR 0xffff

/* Identity-mapped and uncached (runtime/entry.S): 3 GiB up to the IOAPIC. */
#define UNCACHED_START 0xc0000000ull
#define UNCACHED_END 0xfec00000ull

/* Common configuration structure offsets. */
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_MSIX_CONFIG 0x10
#define COMMON_NUM_QUEUES 0x12
#define COMMON_STATUS 0x14
#define COMMON_CFG_GENERATION 0x15
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_NOTIFY_OFF 0x1e
#define COMMON_Q_DESC 0x20
#define COMMON_Q_AVAIL 0x28
#define COMMON_Q_USED 0x30

static struct virtio_device pci_devices[VIRTIO_MAX_DEVICES];
static u32 pci_device_count;

static void conf_address(u8 dev, u8 offset) {
  outl(0xcf8, 0x80000000u | (u32)dev << 11 | (offset & 0xfc));
}
static u32 conf_read32(u8 dev, u8 offset) { return pci_conf1_read32(0, dev, 0, offset); }
static u8 conf_read8(u8 dev, u8 offset) {
  return (u8)(conf_read32(dev, offset) >> (8 * (offset & 3)));
}
static u16 conf_read16(u8 dev, u8 offset) {
  return (u16)(conf_read32(dev, offset) >> (8 * (offset & 2)));
}
static void conf_write32(u8 dev, u8 offset, u32 v) {
  conf_address(dev, offset);
  outl(0xcfc, v);
}
static void conf_write16(u8 dev, u8 offset, u16 v) {
  conf_address(dev, offset);
  outw((u16)(0xcfc + (offset & 2)), v);
}

static volatile u8 *reg8(u64 a) { return (volatile u8 *)a; }
static volatile u16 *reg16(u64 a) { return (volatile u16 *)a; }
static volatile u32 *reg32(u64 a) { return (volatile u32 *)a; }

/* Memory BAR address (0 when unassigned or an I/O BAR); *is64 says whether it takes two. */
static u64 bar_address(u8 dev, u8 bar, bool *is64) {
  u32 low = conf_read32(dev, (u8)(0x10 + 4 * bar));
  *is64 = (low & 0x7) == 0x4;
  if (low & 1) return 0;
  u64 address = low & ~0xfull;
  if (*is64 && bar < 5) address |= (u64)conf_read32(dev, (u8)(0x14 + 4 * bar)) << 32;
  return address;
}

static u64 bar_size(u8 dev, u8 bar, bool is64) {
  u8 off = (u8)(0x10 + 4 * bar);
  u32 low = conf_read32(dev, off);
  conf_write32(dev, off, 0xffffffffu);
  u64 mask = conf_read32(dev, off) & ~0xfull;
  conf_write32(dev, off, low);
  if (is64) {
    u32 high = conf_read32(dev, (u8)(off + 4));
    conf_write32(dev, (u8)(off + 4), 0xffffffffu);
    mask |= (u64)conf_read32(dev, (u8)(off + 4)) << 32;
    conf_write32(dev, (u8)(off + 4), high);
  } else {
    mask |= 0xffffffff00000000ull;
  }
  return mask ? ~mask + 1 : 0;
}

/* True when [start, start+size) overlaps any memory BAR already assigned on bus 0. */
static bool overlaps_assigned_bar(u64 start, u64 size, u64 *conflict_end) {
  for (u8 dev = 0; dev < 32; dev++) {
    if ((u16)conf_read32(dev, 0) == 0xffff) continue;
    if ((conf_read8(dev, 0x0e) & 0x7f) != 0) continue; /* bridges: not ours to parse */
    for (u8 bar = 0; bar < 6; bar++) {
      bool is64;
      u64 a = bar_address(dev, bar, &is64);
      if (a) {
        u64 s = bar_size(dev, bar, is64);
        if (a < start + size && start < a + s) {
          *conflict_end = a + s;
          return true;
        }
      }
      if (is64) bar++;
    }
  }
  return false;
}

/* Gives the BAR an address in the uncached identity map, free of other BARs. */
static bool assign_bar(u8 dev, u8 bar, bool is64) {
  u64 size = bar_size(dev, bar, is64);
  if (size == 0) return false;
  u64 candidate = UNCACHED_START;
  for (u32 tries = 0; tries < 64; tries++) {
    candidate = (candidate + size - 1) & ~(size - 1);
    if (candidate + size > UNCACHED_END) return false;
    u64 end;
    if (!overlaps_assigned_bar(candidate, size, &end)) {
      u16 command = conf_read16(dev, PCI_COMMAND);
      conf_write16(dev, PCI_COMMAND, (u16)(command & ~PCI_COMMAND_MEMORY));
      conf_write32(dev, (u8)(0x10 + 4 * bar), (u32)candidate);
      if (is64) conf_write32(dev, (u8)(0x14 + 4 * bar), 0);
      conf_write16(dev, PCI_COMMAND, command);
      printf("virtio-pci: 00:%02x.0 BAR%u assigned 0x%llx (size 0x%llx)\n", dev, bar,
             (unsigned long long)candidate, (unsigned long long)size);
      return true;
    }
    candidate = end;
  }
  return false;
}

/* Address of a capability's structure, its BAR made usable first. 0 on failure. */
static u64 map_capability(u8 dev, u8 bar, u32 offset, u32 length) {
  if (bar > 5) return 0;
  bool is64;
  u64 base = bar_address(dev, bar, &is64);
  if (base == 0 && (conf_read32(dev, (u8)(0x10 + 4 * bar)) & 1)) return 0; /* I/O BAR */
  if (base == 0 || base < UNCACHED_START || base + offset + length > UNCACHED_END) {
    if (!assign_bar(dev, bar, is64)) return 0;
    base = bar_address(dev, bar, &is64);
  }
  return base + offset;
}

static bool probe(u8 dev, struct virtio_device *out) {
  memset(out, 0, sizeof *out);
  out->pci_dev = dev;
  if (!(conf_read16(dev, 0x06) & PCI_STATUS_CAP_LIST)) return false;
  if (cmdline_has("pci_unassign")) {
    /* Test hook: forget the firmware's BAR placement so assign_bar() has to place them. */
    u16 command = conf_read16(dev, PCI_COMMAND);
    conf_write16(dev, PCI_COMMAND, (u16)(command & ~PCI_COMMAND_MEMORY));
    for (u8 bar = 0; bar < 6; bar++) conf_write32(dev, (u8)(0x10 + 4 * bar), 0);
    printf("virtio-pci: 00:%02x.0 BARs cleared (pci_unassign)\n", dev);
  }
  u8 cap = conf_read8(dev, PCI_CAP_POINTER) & 0xfc;
  for (u32 guard = 0; cap && guard < 48; guard++) {
    u8 id = conf_read8(dev, cap);
    if (id == PCI_CAP_ID_MSIX) out->msix_cap = cap;
    if (id == PCI_CAP_ID_VENDOR) {
      u8 type = conf_read8(dev, (u8)(cap + 3));
      u8 bar = conf_read8(dev, (u8)(cap + 4));
      u32 offset = conf_read32(dev, (u8)(cap + 8));
      u32 length = conf_read32(dev, (u8)(cap + 12));
      /* Only the first structure of each type is used (the spec's preference order). */
      u64 *slot = type == VIRTIO_PCI_CAP_COMMON   ? &out->common_cfg
                  : type == VIRTIO_PCI_CAP_NOTIFY ? &out->notify_base
                  : type == VIRTIO_PCI_CAP_ISR    ? &out->isr_cfg
                  : type == VIRTIO_PCI_CAP_DEVICE ? &out->device_cfg
                                                  : NULL;
      if (slot && *slot == 0) {
        *slot = map_capability(dev, bar, offset, length);
        if (type == VIRTIO_PCI_CAP_NOTIFY) out->notify_multiplier = conf_read32(dev, (u8)(cap + 16));
      }
    }
    cap = conf_read8(dev, (u8)(cap + 1)) & 0xfc;
  }
  if (!out->common_cfg || !out->notify_base || !out->isr_cfg) {
    printf("virtio-pci: 00:%02x.0 lacks usable common/notify/ISR capabilities\n", dev);
    return false;
  }
  u16 command = conf_read16(dev, PCI_COMMAND);
  conf_write16(dev, PCI_COMMAND, (u16)(command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
  out->intx_line = conf_read8(dev, PCI_INTERRUPT_LINE);
  printf("virtio-pci: 00:%02x.0 common 0x%llx notify 0x%llx (x%u) isr 0x%llx device 0x%llx\n", dev,
         (unsigned long long)out->common_cfg, (unsigned long long)out->notify_base,
         out->notify_multiplier, (unsigned long long)out->isr_cfg,
         (unsigned long long)out->device_cfg);
  return true;
}

static u8 pci_get_status(struct virtio_device *d) { return *reg8(d->common_cfg + COMMON_STATUS); }
static void pci_set_status(struct virtio_device *d, u8 s) {
  *reg8(d->common_cfg + COMMON_STATUS) = s;
}
static u64 pci_get_features(struct virtio_device *d) {
  *reg32(d->common_cfg + COMMON_DFSELECT) = 0;
  u64 low = *reg32(d->common_cfg + COMMON_DF);
  *reg32(d->common_cfg + COMMON_DFSELECT) = 1;
  u64 high = *reg32(d->common_cfg + COMMON_DF);
  return low | high << 32;
}
static void pci_set_features(struct virtio_device *d, u64 f) {
  *reg32(d->common_cfg + COMMON_GFSELECT) = 0;
  *reg32(d->common_cfg + COMMON_GF) = (u32)f;
  *reg32(d->common_cfg + COMMON_GFSELECT) = 1;
  *reg32(d->common_cfg + COMMON_GF) = (u32)(f >> 32);
}
static u16 pci_queue_max_size(struct virtio_device *d, u16 index) {
  if (index >= *reg16(d->common_cfg + COMMON_NUM_QUEUES)) return 0;
  *reg16(d->common_cfg + COMMON_Q_SELECT) = index;
  return *reg16(d->common_cfg + COMMON_Q_SIZE);
}
static void write64(u64 a, u64 v) {
  *reg32(a) = (u32)v;
  *reg32(a + 4) = (u32)(v >> 32);
}
static bool pci_queue_enable(struct virtio_device *d, struct virtq *q) {
  u64 c = d->common_cfg;
  *reg16(c + COMMON_Q_SELECT) = q->index;
  *reg16(c + COMMON_Q_SIZE) = q->size;
  write64(c + COMMON_Q_DESC, (u64)q->desc);
  write64(c + COMMON_Q_AVAIL, (u64)q->avail);
  write64(c + COMMON_Q_USED, (u64)q->used);
  u16 notify_off = *reg16(c + COMMON_Q_NOTIFY_OFF);
  q->notify_address = d->notify_base + (u64)notify_off * d->notify_multiplier;
  *reg16(c + COMMON_Q_ENABLE) = 1;
  return *reg16(c + COMMON_Q_ENABLE) == 1;
}
static void pci_notify(struct virtio_device *d, struct virtq *q) {
  (void)d;
  *reg16(q->notify_address) = q->index;
}
static u32 pci_config_read(struct virtio_device *d, u32 offset, u32 width) {
  if (!d->device_cfg) return 0;
  u64 a = d->device_cfg + offset;
  return width == 1 ? *reg8(a) : width == 2 ? *reg16(a) : *reg32(a);
}
static void pci_config_write(struct virtio_device *d, u32 offset, u32 width, u32 value) {
  if (!d->device_cfg) return;
  u64 a = d->device_cfg + offset;
  if (width == 1) *reg8(a) = (u8)value;
  else if (width == 2) *reg16(a) = (u16)value;
  else *reg32(a) = value;
}
static u32 pci_config_generation(struct virtio_device *d) {
  return *reg8(d->common_cfg + COMMON_CFG_GENERATION);
}
static u32 pci_read_isr(struct virtio_device *d) { return *reg8(d->isr_cfg); }

static bool enable_msix(struct virtio_device *d, u8 vector) {
  if (!d->msix_cap) {
    printf("virtio-pci: no MSI-X capability\n");
    return false;
  }
  u8 dev = d->pci_dev;
  u32 table = conf_read32(dev, (u8)(d->msix_cap + 4));
  u64 base = map_capability(dev, (u8)(table & 7), table & ~7u, 16);
  if (!base) return false;
  d->msix_table = base;
  /* Entry 0: fixed delivery to this CPU's APIC ID, edge, our vector; then unmask. */
  *reg32(base + 0) = 0xfee00000u | (u32)lapic_id() << 12;
  *reg32(base + 4) = 0;
  *reg32(base + 8) = vector;
  *reg32(base + 12) = 0;
  u16 control = conf_read16(dev, (u8)(d->msix_cap + 2));
  conf_write16(dev, (u8)(d->msix_cap + 2),
               (u16)((control | MSIX_ENABLE) & ~MSIX_FUNCTION_MASK));
  u16 command = conf_read16(dev, PCI_COMMAND);
  conf_write16(dev, PCI_COMMAND, (u16)(command | PCI_COMMAND_INTX_DISABLE));
  /* Every queue and config changes use vector 0; the device says no by reading back NO_VECTOR. */
  *reg16(d->common_cfg + COMMON_MSIX_CONFIG) = 0;
  if (*reg16(d->common_cfg + COMMON_MSIX_CONFIG) == VIRTIO_MSI_NO_VECTOR) return false;
  for (u16 i = 0; i < d->queue_count; i++) {
    if (!d->queues[i].dev) continue;
    *reg16(d->common_cfg + COMMON_Q_SELECT) = i;
    *reg16(d->common_cfg + COMMON_Q_MSIX) = 0;
    if (*reg16(d->common_cfg + COMMON_Q_MSIX) == VIRTIO_MSI_NO_VECTOR) return false;
  }
  printf("virtio-pci: MSI-X table at 0x%llx, vector 0x%x\n", (unsigned long long)base, vector);
  return true;
}

static bool enable_intx(struct virtio_device *d, u8 vector) {
  u8 line = d->intx_line;
  const struct cpu_topology *cpus = cpus_discover();
  if (line == 0 || line >= 24) {
    printf("virtio-pci: INTx line register 0x%x names no IOAPIC pin\n", line);
    return false;
  }
  /* Level-triggered: the device holds the line until the ISR read in the handler. */
  volatile u32 *regsel = reg32(cpus->ioapic_address);
  volatile u32 *window = reg32(cpus->ioapic_address + 0x10);
  *regsel = 0x10 + 2 * line + 1;
  *window = (u32)lapic_id() << 24;
  *regsel = 0x10 + 2 * line;
  *window = vector | 1u << 15; /* fixed, physical, active high, level, unmasked */
  u16 command = conf_read16(d->pci_dev, PCI_COMMAND);
  conf_write16(d->pci_dev, PCI_COMMAND, (u16)(command & ~PCI_COMMAND_INTX_DISABLE));
  printf("virtio-pci: INTx on IOAPIC pin %u (level), vector 0x%x\n", line, vector);
  return true;
}

static bool pci_enable_interrupts(struct virtio_device *d, const char *mode, u8 vector) {
  if (strncmp(mode, "msix", 5) == 0) return enable_msix(d, vector);
  if (strncmp(mode, "intx", 5) == 0) return enable_intx(d, vector);
  printf("virtio-pci: unknown irq mode %s (poll, msix or intx)\n", mode);
  return false;
}

static const struct virtio_transport_ops pci_ops = {
    .name = "virtio-pci modern",
    .get_status = pci_get_status,
    .set_status = pci_set_status,
    .get_features = pci_get_features,
    .set_features = pci_set_features,
    .queue_max_size = pci_queue_max_size,
    .queue_enable = pci_queue_enable,
    .notify = pci_notify,
    .config_read = pci_config_read,
    .config_write = pci_config_write,
    .config_generation = pci_config_generation,
    .read_isr = pci_read_isr,
    .enable_interrupts = pci_enable_interrupts,
};

struct virtio_device *virtio_pci_find(u16 device_id) {
  for (u8 dev = 0; dev < 32; dev++) {
    u32 id = conf_read32(dev, 0);
    if ((u16)id != PCI_VENDOR_VIRTIO || (id >> 16) != (u32)(PCI_DEVICE_MODERN_BASE + device_id)) continue;
    if (pci_device_count >= VIRTIO_MAX_DEVICES) return NULL;
    struct virtio_device *d = &pci_devices[pci_device_count];
    if (!probe(dev, d)) continue;
    pci_device_count++;
    d->ops = &pci_ops;
    d->device_id = device_id;
    d->irq_mode = "poll";
    /* "pci 00:xx.0" */
    const char *hex = "0123456789abcdef";
    memcpy(d->location, "pci 00:", 7);
    d->location[7] = hex[dev >> 4];
    d->location[8] = hex[dev & 15];
    memcpy(d->location + 9, ".0", 3);
    return d;
  }
  return NULL;
}
