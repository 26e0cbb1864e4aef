import assert from "node:assert/strict";
import { join } from "node:path";
import { closeFd, unwrap } from "../../ffi/libc.ts";
import { read } from "../../ffi/fs.ts";
import {
  AF_UNIX,
  bind,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  socket,
} from "../../ffi/socket.ts";
import { unixAddress } from "./notify.ts";
import { daemonLog, journalEntry, stderrIsJournal } from "./journal.ts";
import { fstat } from "../../ffi/file_stat.ts";

Deno.test("journalEntry() is one KEY=value line per field, the domain a field of its own", () => {
  assert.equal(
    journalEntry("domain 'web' started: VMM pid 42", { domain: "web", event: "started" }),
    "MESSAGE=domain 'web' started: VMM pid 42\nPRIORITY=6\nSYSLOG_IDENTIFIER=denovisor\n" +
      "DENOVISOR_DOMAIN=web\nDENOVISOR_EVENT=started\n",
  );
  assert.equal(
    journalEntry("two\nlines"),
    "MESSAGE=two lines\nPRIORITY=6\nSYSLOG_IDENTIFIER=denovisor\n",
  );
});

Deno.test("stderrIsJournal() holds only when JOURNAL_STREAM names stderr's device and inode", () => {
  const stat = fstat(2);
  assert.equal(stderrIsJournal(`${stat.dev}:${stat.ino}`), true);
  assert.equal(stderrIsJournal(`${stat.dev}:${stat.ino + 1n}`), false);
  assert.equal(stderrIsJournal(""), false);
  assert.equal(stderrIsJournal("junk"), false);
  assert.equal(stderrIsJournal(undefined), false);
});

Deno.test("daemonLog() sends journal entries to the socket, or writes one line to stderr", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-journal-" });
  const path = join(dir, "journal.sock");
  const fd = unwrap(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC), "socket");
  try {
    const { bytes, length } = unixAddress(path);
    unwrap(bind(fd, bytes, length), "bind");
    const lines: string[] = [];
    const log = daemonLog({ journal: path, stderr: (text) => lines.push(text) });
    log("domain 'web' crashed: VMM killed by SIGKILL", { domain: "web", event: "crashed" });
    const buffer = new Uint8Array(4096);
    const count = read(fd, buffer);
    const entry = new TextDecoder().decode(buffer.subarray(0, count));
    assert.match(entry, /^MESSAGE=domain 'web' crashed: VMM killed by SIGKILL\n/);
    assert.match(entry, /\nDENOVISOR_DOMAIN=web\n/);
    assert.equal(lines.length, 0);
    // A journal that is gone: stderr, with no timestamp of its own.
    const gone = daemonLog({ journal: join(dir, "none.sock"), stderr: (text) => lines.push(text) });
    gone("listening", {});
    gone("again");
    assert.deepEqual(lines, ["denovisor daemon: listening", "denovisor daemon: again"]);
    // Not under systemd: stderr.
    const stream = Deno.env.get("JOURNAL_STREAM");
    Deno.env.delete("JOURNAL_STREAM");
    const plain = daemonLog({ stderr: (text) => lines.push(text) });
    if (stream !== undefined) Deno.env.set("JOURNAL_STREAM", stream);
    plain("x", { domain: "web" });
    assert.equal(lines.at(-1), "denovisor daemon: x");
  } finally {
    closeFd(fd);
    await Deno.remove(dir, { recursive: true });
  }
});
