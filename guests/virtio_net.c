/*
 * virtio_net: reads the MAC (and link status) from config, posts receive buffers, sends
 * `tx=N` (default 4) broadcast Ethernet frames with ethertype 0x88b5 (local experimental)
 * and payload "denovisor-frame-K", then receives frames until `rx=N` (default 4) frames
 * of ethertype 0x88b5 whose payload starts with "host-frame-" arrived, printing each, or
 * `timeout=` seconds (default 30) pass. Other frames (IPv6 chatter) are printed and
 * ignored. With `echo=1`, each host frame is answered at once with denovisor-frame-(1000+K),
 * K counting the host frames from 0 (the save/restore tests check both directions after a
 * restore). Command line: transport=pci|mmio irq=poll|msix|intx|irq tx=N rx=N timeout=S echo=1.
 * Exit status 0 only if every check passed.
 */
#include "runtime/virtio.h"

#define NET_F_MAC 5
#define NET_F_STATUS 16
#define NET_S_LINK_UP 1
#define NET_HEADER_SIZE 12 /* struct virtio_net_hdr with num_buffers (VERSION_1) */
#define ETH_HEADER_SIZE 14
#define ETH_MIN_FRAME 60
#define ETHERTYPE_TEST 0x88b5
#define RX_BUFFERS 16
#define RX_BUFFER_SIZE 2048
#define TX_TIMEOUT_MS 10000
#define MAX_IGNORED_FRAMES 64

static struct virtq *rxq, *txq;
static u8 rx_buffers[RX_BUFFERS][RX_BUFFER_SIZE];
static u8 tx_buffer[NET_HEADER_SIZE + 128];
static u8 mac[6];

static void post_rx(u8 *buffer) {
  struct virtq_buffer b = {buffer, RX_BUFFER_SIZE, true};
  virtq_add(rxq, &b, 1, buffer);
}

static u32 append_decimal(char *out, u32 value) {
  char digits[12];
  u32 n = 0;
  do digits[n++] = (char)('0' + value % 10), value /= 10;
  while (value);
  for (u32 i = 0; i < n; i++) out[i] = digits[n - 1 - i];
  return n;
}

static bool send_frame(u32 index) {
  memset(tx_buffer, 0, sizeof tx_buffer); /* zero virtio_net_hdr: no offloads */
  u8 *frame = tx_buffer + NET_HEADER_SIZE;
  memset(frame, 0xff, 6);
  memcpy(frame + 6, mac, 6);
  frame[12] = ETHERTYPE_TEST >> 8;
  frame[13] = ETHERTYPE_TEST & 0xff;
  char *payload = (char *)frame + ETH_HEADER_SIZE;
  memcpy(payload, "denovisor-frame-", 16);
  u32 length = ETH_HEADER_SIZE + 16 + append_decimal(payload + 16, index);
  if (length < ETH_MIN_FRAME) length = ETH_MIN_FRAME;
  struct virtq_buffer b = {tx_buffer, NET_HEADER_SIZE + length, false};
  bool ok = virtq_submit_and_wait(txq, &b, 1, TX_TIMEOUT_MS) >= 0;
  printf("virtio_net: sent denovisor-frame-%u (%u bytes)\n", index, length);
  return ok;
}

/* Prints a received payload as text (up to the first NUL or 64 bytes). */
static void print_payload(const u8 *p, u32 n) {
  char text[65];
  u32 i = 0;
  for (; i < n && i < 64 && p[i]; i++) text[i] = (p[i] >= 32 && p[i] < 127) ? (char)p[i] : '.';
  text[i] = 0;
  print(text);
}

int main(void) {
  print("virtio_net: start\n");
  struct virtio_device *dev = virtio_find(VIRTIO_ID_NET, virtio_cmdline_transport());
  if (!dev) {
    print("FAIL no virtio-net device found\n");
    return 1;
  }
  if (!virtio_init(dev, 1ull << NET_F_MAC | 1ull << NET_F_STATUS)) return 1;
  rxq = virtq_setup(dev, 0, 64);
  txq = virtq_setup(dev, 1, 64);
  if (!rxq || !txq) return 1;
  const char *irq = virtio_cmdline_irq_mode();
  virtio_check(virtio_enable_interrupts(dev, irq), "interrupt mode %s set up", irq);
  virtio_driver_ok(dev);

  virtio_check(virtio_has(dev, NET_F_MAC), "device offers VIRTIO_NET_F_MAC");
  for (u32 i = 0; i < 6; i++) mac[i] = virtio_config_u8(dev, i);
  printf("virtio_net: mac %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3],
         mac[4], mac[5]);
  if (virtio_has(dev, NET_F_STATUS)) {
    u16 status = virtio_config_u16(dev, 6);
    virtio_check(status & NET_S_LINK_UP, "link is up (status 0x%x)", status);
  }
  for (u32 i = 0; i < RX_BUFFERS; i++) post_rx(rx_buffers[i]);
  virtq_kick(rxq);

  u32 tx_count = (u32)cmdline_get_u64("tx", 4);
  bool sent = true;
  for (u32 i = 0; i < tx_count; i++) sent = send_frame(i) && sent;
  virtio_check(sent, "%u frames sent through the transmit queue", tx_count);

  u32 rx_wanted = (u32)cmdline_get_u64("rx", 4);
  u32 timeout_ms = (u32)cmdline_get_u64("timeout", 30) * 1000;
  bool echo = cmdline_get_u64("echo", 0) != 0;
  u32 received = 0, ignored = 0;
  bool payloads_ok = true, echoed = true;
  while (received < rx_wanted && ignored < MAX_IGNORED_FRAMES) {
    u32 written = 0;
    u8 *buffer = virtq_wait_used(rxq, &written, timeout_ms);
    if (!buffer) break;
    if (written > RX_BUFFER_SIZE) written = RX_BUFFER_SIZE;
    u8 *frame = buffer + NET_HEADER_SIZE;
    u32 length = written > NET_HEADER_SIZE ? written - NET_HEADER_SIZE : 0;
    u16 type = length >= ETH_HEADER_SIZE ? (u16)(frame[12] << 8 | frame[13]) : 0;
    if (type == ETHERTYPE_TEST) {
      const u8 *payload = frame + ETH_HEADER_SIZE;
      u32 payload_length = length - ETH_HEADER_SIZE;
      printf("virtio_net: rx %u bytes from %02x:%02x:%02x:%02x:%02x:%02x: ", length, frame[6],
             frame[7], frame[8], frame[9], frame[10], frame[11]);
      print_payload(payload, payload_length);
      print("\n");
      if (payload_length < 11 || memcmp(payload, "host-frame-", 11) != 0) payloads_ok = false;
      if (echo) echoed = send_frame(1000 + received) && echoed;
      received++;
    } else {
      printf("virtio_net: ignoring a %u-byte frame of ethertype 0x%04x\n", length, type);
      ignored++;
    }
    post_rx(buffer);
    virtq_kick(rxq);
  }
  virtio_check(received == rx_wanted, "received %u of %u host frames (ethertype 0x88b5)", received,
               rx_wanted);
  virtio_check(payloads_ok, "every received payload starts with \"host-frame-\"");
  if (echo) virtio_check(echoed, "every host frame answered");
  if (strncmp(dev->irq_mode, "poll", 5) != 0) {
    virtio_check(dev->irq_count > 0, "%u interrupts received (%s)", dev->irq_count, dev->irq_mode);
  }
  printf("virtio_net: %s (%u failures)\n", virtio_failures ? "FAILED" : "all passed", virtio_failures);
  return virtio_failures ? 1 : 0;
}
