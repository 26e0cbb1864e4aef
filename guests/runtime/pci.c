/* PCI configuration mechanism #1 (ports 0xcf8/0xcfc): bus 0 enumeration. */
#include "rt.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc

u32 pci_conf1_read32(u8 bus, u8 dev, u8 fn, u8 offset) {
  outl(PCI_CONFIG_ADDRESS, 0x80000000u | (u32)bus << 16 | (u32)dev << 11 | (u32)fn << 8 |
                               (offset & 0xfc));
  return inl(PCI_CONFIG_DATA);
}

u32 pci_scan_bus0(void) {
  u32 found = 0;
  for (u8 dev = 0; dev < 32; dev++) {
    for (u8 fn = 0; fn < 8; fn++) {
      u32 id = pci_conf1_read32(0, dev, fn, 0x00);
      u16 vendor = (u16)id;
      if (vendor == 0xffff || vendor == 0x0000) {
        if (fn == 0) break; /* no function 0: no device */
        continue;
      }
      u32 class_reg = pci_conf1_read32(0, dev, fn, 0x08);
      u32 header = pci_conf1_read32(0, dev, fn, 0x0c);
      printf("pci: 00:%02x.%u %04x:%04x class %06x\n", dev, fn, vendor, id >> 16, class_reg >> 8);
      found++;
      /* Header type bit 7 tells whether functions 1-7 exist. */
      if (fn == 0 && !((header >> 16) & 0x80)) break;
    }
  }
  return found;
}
