/* CPU and interrupt-routing discovery: Intel MP table first, ACPI MADT second. */
#include "rt.h"

#define MAPPED_LIMIT 0x100000000ull

struct mp_floating_pointer {
  char signature[4]; /* "_MP_" */
  u32 config_table;
  u8 length_paragraphs;
  u8 spec_rev;
  u8 checksum;
  u8 features[5];
} __attribute__((packed));

struct mp_config_header {
  char signature[4]; /* "PCMP" */
  u16 base_length;
  u8 spec_rev;
  u8 checksum;
  char oem_id[8];
  char product_id[12];
  u32 oem_table;
  u16 oem_table_size;
  u16 entry_count;
  u32 lapic_address;
  u16 extended_length;
  u8 extended_checksum;
  u8 reserved;
} __attribute__((packed));

struct acpi_header {
  char signature[4];
  u32 length;
  u8 revision;
  u8 checksum;
  char oem_id[6];
  char oem_table_id[8];
  u32 oem_revision;
  u32 creator_id;
  u32 creator_revision;
} __attribute__((packed));

static struct cpu_topology topology;
static struct cpu_topology madt_topology;
static bool discovered;

static u8 checksum(const void *p, u32 len) {
  const u8 *b = p;
  u8 sum = 0;
  for (u32 i = 0; i < len; i++) sum += b[i];
  return sum;
}

static void add_cpu(struct cpu_topology *t, u8 apic_id) {
  if (t->count < MAX_CPUS) t->apic_ids[t->count++] = apic_id;
}

static void reset(struct cpu_topology *t, const char *source) {
  memset(t, 0, sizeof *t);
  for (u8 irq = 0; irq < 16; irq++) t->isa_irq_pin[irq] = irq;
  t->ioapic_address = IOAPIC_DEFAULT_ADDRESS;
  t->source = source;
}

static const struct mp_floating_pointer *find_mp_pointer(u64 start, u64 end) {
  for (u64 a = start; a + 16 <= end; a += 16) {
    const struct mp_floating_pointer *fp = (const void *)a;
    if (memcmp(fp->signature, "_MP_", 4) == 0 && checksum(fp, 16) == 0) return fp;
  }
  return NULL;
}

static bool parse_mp_table(struct cpu_topology *t) {
  /* Denovisor: EBDA at 0x9fc00. Firmware may move it: the BDA keeps its segment at 0x40e. */
  const struct mp_floating_pointer *fp = find_mp_pointer(0x9fc00, 0xa0000);
  if (!fp) {
    u64 ebda = (u64)(*(volatile u16 *)0x40e) << 4;
    if (ebda >= 0x80000 && ebda < 0xa0000) fp = find_mp_pointer(ebda, ebda + 1024);
  }
  if (!fp) fp = find_mp_pointer(0xf0000, 0x100000);
  if (!fp || !fp->config_table) return false;

  const struct mp_config_header *h = (const void *)(u64)fp->config_table;
  if (memcmp(h->signature, "PCMP", 4) != 0 || checksum(h, h->base_length) != 0) return false;

  u8 isa_buses[8];
  u32 isa_bus_count = 0;
  const u8 *e = (const u8 *)(h + 1);
  const u8 *end = (const u8 *)h + h->base_length;
  for (u32 i = 0; i < h->entry_count && e < end; i++) {
    switch (e[0]) {
      case 0: /* processor: apic id, version, flags (bit 0 enabled, bit 1 BSP) */
        if (e[3] & 1) add_cpu(t, e[1]);
        e += 20;
        break;
      case 1: /* bus: id, 6-char type */
        if (memcmp(e + 2, "ISA", 3) == 0 && isa_bus_count < 8) isa_buses[isa_bus_count++] = e[1];
        e += 8;
        break;
      case 2: /* IOAPIC: id, version, flags, address */
        if (e[3] & 1) t->ioapic_address = *(const u32 *)(e + 4);
        e += 8;
        break;
      case 3: /* I/O interrupt: type, flags(2), src bus, src irq, dst ioapic, dst pin */
        for (u32 b = 0; b < isa_bus_count; b++) {
          if (e[1] == 0 && e[4] == isa_buses[b] && e[5] < 16) t->isa_irq_pin[e[5]] = e[7];
        }
        e += 8;
        break;
      default: /* local interrupt (4) and anything unknown is 8 bytes */
        e += 8;
        break;
    }
  }
  return t->count > 0;
}

static const struct acpi_header *acpi_table(u64 addr) {
  if (!addr || addr >= MAPPED_LIMIT) return NULL;
  return (const struct acpi_header *)addr;
}

/*
 * Uses the RSDP from hvm_start_info; scans 0xe0000-0xfffff for one only when allowed
 * (no MP table), since that range may be unbacked (each read an MMIO exit) under a VMM.
 */
static bool parse_madt(struct cpu_topology *t, bool may_scan) {
  const struct hvm_start_info *info = boot_info();
  const u8 *rsdp = info && info->rsdp_paddr && info->rsdp_paddr < MAPPED_LIMIT
                       ? (const u8 *)info->rsdp_paddr
                       : NULL;
  for (u64 a = 0xe0000; !rsdp && may_scan && a < 0x100000; a += 16) {
    if (memcmp((const void *)a, "RSD PTR ", 8) == 0 && checksum((const void *)a, 20) == 0) {
      rsdp = (const u8 *)a;
    }
  }
  if (!rsdp || memcmp(rsdp, "RSD PTR ", 8) != 0) return false;

  bool xsdt = rsdp[15] >= 2 && *(const u64 *)(rsdp + 24);
  const struct acpi_header *root =
      acpi_table(xsdt ? *(const u64 *)(rsdp + 24) : *(const u32 *)(rsdp + 16));
  if (!root) return false;
  u32 entry_size = xsdt ? 8 : 4;
  u32 entries = (root->length - sizeof *root) / entry_size;
  const u8 *list = (const u8 *)(root + 1);
  for (u32 i = 0; i < entries; i++) {
    u64 addr = xsdt ? *(const u64 *)(list + 8 * i) : *(const u32 *)(list + 4 * i);
    const struct acpi_header *madt = acpi_table(addr);
    if (!madt || memcmp(madt->signature, "APIC", 4) != 0) continue;
    const u8 *e = (const u8 *)madt + sizeof *madt + 8; /* skip LAPIC address and flags */
    const u8 *end = (const u8 *)madt + madt->length;
    while (e + 2 <= end && e[1] >= 2) {
      if (e[0] == 0 && (*(const u32 *)(e + 4) & 1)) add_cpu(t, e[3]);
      if (e[0] == 1) t->ioapic_address = *(const u32 *)(e + 4);
      if (e[0] == 2 && e[2] == 0 && e[3] < 16) t->isa_irq_pin[e[3]] = (u8)(*(const u32 *)(e + 4));
      e += e[1];
    }
    return t->count > 0;
  }
  return false;
}

/*
 * The MP table wins, except when the MADT lists more CPUs: SeaBIOS (under QEMU) writes
 * its MP table from the APs that answered its own bring-up, and on a slow emulated host
 * some answer too late. Denovisor writes only an MP table.
 */
const struct cpu_topology *cpus_discover(void) {
  if (discovered) return &topology;
  discovered = true;
  u8 bsp = lapic_id();
  reset(&topology, "mptable");
  bool have_mp_table = parse_mp_table(&topology);
  if (!have_mp_table) reset(&topology, "none");
  reset(&madt_topology, "acpi");
  if (parse_madt(&madt_topology, !have_mp_table) && madt_topology.count > topology.count) {
    topology = madt_topology;
  }
  if (topology.count == 0) add_cpu(&topology, bsp);
  topology.bsp_apic_id = bsp;
  return &topology;
}
