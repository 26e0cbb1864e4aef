import assert from "node:assert/strict";
import { Epoll } from "./epoll.ts";
import { EventFd } from "./eventfd.ts";
import { SyscallError } from "./errno.ts";

Deno.test("Epoll reports the tokens of readable fds, and only while they are watched", async () => {
  using epoll = new Epoll(4);
  using a = new EventFd();
  using b = new EventFd();
  epoll.add(a.fd, 7);
  epoll.add(b.fd, 2 ** 40);
  b.signal();
  assert.equal(await epoll.wait(1000), 1);
  assert.equal(epoll.token(0), 2 ** 40);
  a.signal();
  const count = await epoll.wait(1000);
  assert.equal(count, 2);
  assert.deepEqual(new Set([epoll.token(0), epoll.token(1)]), new Set([7, 2 ** 40]));
  epoll.delete(b.fd);
  a.take();
  assert.equal(await epoll.wait(0), 0, "b is readable but no longer watched");
});

Deno.test("Epoll refuses a second wait and names epoll_ctl on a bad fd", async () => {
  using epoll = new Epoll();
  using fd = new EventFd();
  epoll.add(fd.fd);
  const pending = epoll.wait(2000);
  await assert.rejects(() => epoll.wait(0), /already pending/);
  fd.signal();
  assert.equal(await pending, 1);
  assert.throws(
    () => epoll.add(-1),
    (e: unknown) => e instanceof SyscallError && e.call === "epoll_ctl(ADD)",
  );
  assert.throws(() => epoll.add(fd.fd), (e: unknown) => e instanceof SyscallError);
});
