/*
 * Guest-side virtio 1.x driver library: split virtqueues in statically allocated,
 * identity-mapped guest memory, device initialisation with feature negotiation
 * (VIRTIO_F_VERSION_1 required), and two transports: modern virtio-pci (virtio_pci.c)
 * and virtio-mmio v2 (virtio_mmio.c). Interrupts are optional: queues are polled unless
 * virtio_enable_interrupts() succeeded, then waiting halts until the device interrupts.
 *
 * Everything is single-CPU and synchronous; addresses given to the device are guest
 * physical, which equal virtual addresses under the runtime's identity page tables.
 */
#pragma once

#include "rt.h"

/* Device IDs (virtio 1.2, 5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5

/* Device-independent feature bits. */
#define VIRTIO_F_VERSION_1 32

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

/* Largest queue this library sets up (and the static pool's per-queue footprint). */
#define VIRTQ_MAX_SIZE 256
#define VIRTIO_MAX_QUEUES 4
#define VIRTIO_MAX_DEVICES 4

struct virtq_desc {
  u64 addr;
  u32 len;
  u16 flags;
  u16 next;
};
struct virtq_avail {
  u16 flags;
  u16 idx;
  u16 ring[VIRTQ_MAX_SIZE];
};
struct virtq_used_elem {
  u32 id;
  u32 len;
};
struct virtq_used {
  u16 flags;
  u16 idx;
  struct virtq_used_elem ring[VIRTQ_MAX_SIZE];
};

struct virtio_device;

/* One split virtqueue, driver side. */
struct virtq {
  struct virtio_device *dev;
  u16 index;
  u16 size;
  volatile struct virtq_desc *desc;
  volatile struct virtq_avail *avail;
  volatile struct virtq_used *used;
  u16 free_head;
  u16 num_free;
  u16 last_used; /* next used-ring slot this driver has not consumed */
  void *cookies[VIRTQ_MAX_SIZE];
  u16 chain_length[VIRTQ_MAX_SIZE];
  u64 notify_address; /* PCI: notify cap address; MMIO: unused */
};

/* One buffer of a chain: guest-physical address, length, device-writable or not. */
struct virtq_buffer {
  const void *address;
  u32 length;
  bool device_writes;
};

/* Transport operations (PCI or MMIO). Widths for config access are 1, 2 or 4. */
struct virtio_transport_ops {
  const char *name;
  u8 (*get_status)(struct virtio_device *dev);
  void (*set_status)(struct virtio_device *dev, u8 status);
  u64 (*get_features)(struct virtio_device *dev);
  void (*set_features)(struct virtio_device *dev, u64 features);
  /* Largest queue size the device allows (0: queue does not exist). */
  u16 (*queue_max_size)(struct virtio_device *dev, u16 index);
  /* Programs and enables a queue; false when the device refused it. */
  bool (*queue_enable)(struct virtio_device *dev, struct virtq *q);
  void (*notify)(struct virtio_device *dev, struct virtq *q);
  u32 (*config_read)(struct virtio_device *dev, u32 offset, u32 width);
  void (*config_write)(struct virtio_device *dev, u32 offset, u32 width, u32 value);
  u32 (*config_generation)(struct virtio_device *dev);
  /* Reads (and so acknowledges) the interrupt status: bit 0 queue, bit 1 config. */
  u32 (*read_isr)(struct virtio_device *dev);
  /* Sets up interrupt delivery in `mode`; false when the device cannot. */
  bool (*enable_interrupts)(struct virtio_device *dev, const char *mode, u8 vector);
};

struct virtio_device {
  const struct virtio_transport_ops *ops;
  u16 device_id;
  u64 features; /* negotiated */
  struct virtq queues[VIRTIO_MAX_QUEUES];
  u16 queue_count;
  /* Interrupt state: mode is "poll", "msix", "intx" or "mmio-irq". */
  const char *irq_mode;
  u8 irq_vector;
  volatile u32 irq_count;
  volatile u32 isr_seen; /* ISR bits collected by the interrupt handler */
  char location[48];     /* "pci 00:03.0" or "mmio 0xd0000000 irq 5" */

  /* PCI transport state. */
  u8 pci_dev;
  u64 common_cfg, notify_base, isr_cfg, device_cfg;
  u32 notify_multiplier;
  u8 msix_cap;
  u64 msix_table;
  u8 intx_line;

  /* MMIO transport state. */
  u64 mmio_base;
  u32 mmio_irq;
};

/*
 * Finds the first device of `device_id`. `transport` is "pci", "mmio" or NULL (try PCI,
 * then MMIO devices announced on the command line). NULL when none was found.
 */
struct virtio_device *virtio_find(u16 device_id, const char *transport);
struct virtio_device *virtio_pci_find(u16 device_id);
struct virtio_device *virtio_mmio_find(u16 device_id);

/*
 * Resets the device, acknowledges it, negotiates features (wanted & offered, plus
 * VERSION_1 which must be offered), sets FEATURES_OK and checks it stuck. Queues come
 * next (virtq_setup), then virtio_driver_ok(). False (with a FAIL line printed) on error.
 */
bool virtio_init(struct virtio_device *dev, u64 wanted_features);
/* Offered features, read before negotiation (valid after virtio_init). */
u64 virtio_offered_features(struct virtio_device *dev);
static inline bool virtio_has(struct virtio_device *dev, u32 bit) {
  return (dev->features >> bit) & 1;
}
/* Sets up queue `index` with at most `max_size` entries; NULL (FAIL printed) on error. */
struct virtq *virtq_setup(struct virtio_device *dev, u16 index, u16 max_size);
void virtio_driver_ok(struct virtio_device *dev);
/* Writes 0 to the status: the device forgets queues and features. */
void virtio_reset(struct virtio_device *dev);

/*
 * Interrupt delivery: `mode` "poll" (nothing), "msix" or "intx" (PCI), "irq" (MMIO);
 * must run after virtq_setup of every queue and before virtio_driver_ok. False when the
 * transport cannot deliver that way (the device stays in polling mode).
 */
bool virtio_enable_interrupts(struct virtio_device *dev, const char *mode);

/* Config space reads that retry until the generation counter is stable. */
u8 virtio_config_u8(struct virtio_device *dev, u32 offset);
u16 virtio_config_u16(struct virtio_device *dev, u32 offset);
u32 virtio_config_u32(struct virtio_device *dev, u32 offset);
u64 virtio_config_u64(struct virtio_device *dev, u32 offset);
void virtio_config_write_u32(struct virtio_device *dev, u32 offset, u32 value);

/* Adds a chain (readable buffers must come before writable ones); false when full. */
bool virtq_add(struct virtq *q, const struct virtq_buffer *buffers, u32 count, void *cookie);
/* Publishes added chains and notifies the device. */
void virtq_kick(struct virtq *q);
/* Takes one used chain: its cookie (and written length), or NULL when none is ready. */
void *virtq_get_used(struct virtq *q, u32 *written);
/*
 * Waits up to timeout_ms for a used chain (halting on interrupts, or polling with short
 * delays); returns its cookie or NULL on timeout.
 */
void *virtq_wait_used(struct virtq *q, u32 *written, u32 timeout_ms);
/* Adds, kicks and waits for that same chain; the written length or -1 on timeout. */
long virtq_submit_and_wait(struct virtq *q, const struct virtq_buffer *buffers, u32 count,
                           u32 timeout_ms);

/* Helpers for the test guests. */
extern u32 virtio_failures;
void virtio_check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The `transport=` value from the command line, or NULL (auto). */
const char *virtio_cmdline_transport(void);
/* The `irq=` value from the command line ("poll" when absent). */
const char *virtio_cmdline_irq_mode(void);
/* Milliseconds-resolution wait (PIT channel 2 busy-wait), for pacing host interactions. */
void virtio_sleep_ms(u32 ms);
/* Full memory barrier. */
static inline void virtio_mb(void) { __asm__ volatile("lock; orl $0, (%%rsp)" ::: "memory"); }
