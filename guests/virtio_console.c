/*
 * virtio_console: a single-port virtio console without VIRTIO_CONSOLE_F_MULTIPORT (port 0
 * on receiveq 0 / transmitq 1). Prints greeting lines through the transmit queue, then
 * echoes every line received as "vcon-echo: LINE" until a line "quit" (or `timeout=`
 * seconds, default 60, without input). Command line: transport=pci|mmio
 * irq=poll|msix|intx|irq lines=N (greeting lines, default 3). Exit 0 only if all passed.
 */
#include "runtime/virtio.h"

#define RX_BUFFERS 8
#define RX_BUFFER_SIZE 64
#define TX_TIMEOUT_MS 10000

static struct virtq *rxq, *txq;
static u8 rx_buffers[RX_BUFFERS][RX_BUFFER_SIZE];
static char tx_buffer[256];

static bool post_rx(u8 *buffer) {
  struct virtq_buffer b = {buffer, RX_BUFFER_SIZE, true};
  return virtq_add(rxq, &b, 1, buffer);
}

static bool send_line(const char *prefix, const char *text) {
  u32 n = 0;
  for (const char *s = prefix; *s && n < sizeof tx_buffer - 2; s++) tx_buffer[n++] = *s;
  for (const char *s = text; *s && n < sizeof tx_buffer - 2; s++) tx_buffer[n++] = *s;
  tx_buffer[n++] = '\n';
  struct virtq_buffer b = {tx_buffer, n, false};
  return virtq_submit_and_wait(txq, &b, 1, TX_TIMEOUT_MS) >= 0;
}

int main(void) {
  print("virtio_console: start\n");
  struct virtio_device *dev = virtio_find(VIRTIO_ID_CONSOLE, virtio_cmdline_transport());
  if (!dev) {
    print("FAIL no virtio-console device found\n");
    return 1;
  }
  /* No MULTIPORT, SIZE or EMERG_WRITE: the plain one-port console. */
  if (!virtio_init(dev, 0)) return 1;
  rxq = virtq_setup(dev, 0, 16);
  txq = virtq_setup(dev, 1, 16);
  if (!rxq || !txq) return 1;
  const char *irq = virtio_cmdline_irq_mode();
  virtio_check(virtio_enable_interrupts(dev, irq), "interrupt mode %s set up", irq);
  virtio_driver_ok(dev);
  for (u32 i = 0; i < RX_BUFFERS; i++) post_rx(rx_buffers[i]);
  virtq_kick(rxq);

  u32 lines = (u32)cmdline_get_u64("lines", 3);
  bool sent = true;
  for (u32 i = 1; i <= lines; i++) {
    char text[48] = "hello from the virtio console, line ";
    u32 n = (u32)strlen(text);
    text[n++] = (char)('0' + i % 10);
    text[n] = 0;
    sent = send_line("vcon: ", text) && sent;
  }
  virtio_check(sent, "%u lines sent through the transmit queue", lines);
  print("virtio_console: ready\n");

  u32 timeout_ms = (u32)cmdline_get_u64("timeout", 60) * 1000;
  char line[128];
  u32 length = 0, echoed = 0;
  bool quit = false, echo_ok = true;
  while (!quit) {
    u32 written = 0;
    u8 *buffer = virtq_wait_used(rxq, &written, timeout_ms);
    if (!buffer) break;
    if (written > RX_BUFFER_SIZE) written = RX_BUFFER_SIZE;
    for (u32 i = 0; i < written && !quit; i++) {
      char c = (char)buffer[i];
      if (c != '\r' && c != '\n') {
        if (length < sizeof line - 1) line[length++] = c;
        continue;
      }
      if (length == 0) continue;
      line[length] = 0;
      length = 0;
      if (str_equal(line, "quit")) {
        quit = true;
        break;
      }
      printf("virtio_console: received \"%s\"\n", line);
      echo_ok = send_line("vcon-echo: ", line) && echo_ok;
      echoed++;
    }
    post_rx(buffer);
    virtq_kick(rxq);
  }
  virtio_check(quit, "\"quit\" received on the receive queue");
  virtio_check(echo_ok, "%u lines echoed back", echoed);
  send_line("vcon: ", "bye");
  if (strncmp(dev->irq_mode, "poll", 5) != 0) {
    virtio_check(dev->irq_count > 0, "%u interrupts received (%s)", dev->irq_count, dev->irq_mode);
  }
  printf("virtio_console: %s (%u failures)\n", virtio_failures ? "FAILED" : "all passed",
         virtio_failures);
  return virtio_failures ? 1 : 0;
}
