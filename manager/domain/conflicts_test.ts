import assert from "node:assert/strict";
import type { DiskDefinition } from "../api_types.ts";
import { checkConflicts, DomainConflictError, validateDefinition } from "./definition.ts";

const OPTIONS = { hostMemoryBytes: 8 * 1024 ** 3 };

function domain(name: string, extra: Record<string, unknown> = {}) {
  return validateDefinition({ name, boot: { demo: true }, ...extra }, OPTIONS);
}

function clash(run: () => void, path: string, message: string, other: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof DomainConflictError, `not a DomainConflictError: ${error}`);
    assert.equal(error.message, message);
    assert.equal(error.path, path);
    assert.equal(error.other, other);
    return true;
  });
}

Deno.test("checkConflicts() refuses a name another domain has", () => {
  clash(
    () => checkConflicts(domain("web"), [{ definition: domain("web"), running: false }]),
    "name",
    "name: a domain named 'web' already exists; choose another name or edit that one",
    "web",
  );
});

Deno.test("checkConflicts() refuses a uuid another domain has", () => {
  const db = domain("db");
  clash(
    () => checkConflicts(domain("web", { uuid: db.uuid }), [{ definition: db, running: false }]),
    "uuid",
    `uuid: ${db.uuid} is already the uuid of domain 'db'; leave uuid out to get a new one`,
    "db",
  );
});

Deno.test("checkConflicts() refuses a MAC another domain has, running or not", () => {
  const db = domain("db", { nics: [{}, { mac: "52:54:00:00:00:07" }] });
  clash(
    () =>
      checkConflicts(
        domain("web", { nics: [{ mac: "52:54:00:00:00:07" }] }),
        [{ definition: domain("other"), running: true }, { definition: db, running: false }],
      ),
    "nics[0].mac",
    "nics[0].mac: 52:54:00:00:00:07 is already the MAC of domain 'db' (nics[1]); leave mac out to get a generated one",
    "db",
  );
});

Deno.test("checkConflicts() refuses a disk a running domain uses read-write", () => {
  const db = domain("db", { disks: [{ path: "/img/b" }, { path: "/img/a" }] });
  const web = domain("web", { disks: [{ path: "/img/a", readOnly: true }] });
  checkConflicts(web, [{ definition: db, running: false }]);
  clash(
    () => checkConflicts(web, [{ definition: db, running: true }]),
    "disks[0].path",
    "disks[0].path: /img/a is in use by running domain 'db' (disks[1], read-write); stop that domain or give a copy",
    "db",
  );
});

Deno.test("checkConflicts() refuses writing a disk a running domain reads, allows sharing read-only", () => {
  const db = domain("db", { disks: [{ volume: "base", readOnly: true }] });
  checkConflicts(domain("web", { disks: [{ volume: "base", readOnly: true }] }), [
    { definition: db, running: true },
  ]);
  clash(
    () =>
      checkConflicts(domain("web", { disks: [{ volume: "base" }] }), [
        { definition: db, running: true },
      ]),
    "disks[0].volume",
    "disks[0].volume: volume 'base' of pool 'default' is in use by running domain 'db' (disks[0], read-only, and this domain would write to it); stop that domain or give a copy, or make this disk readOnly",
    "db",
  );
});

Deno.test("checkConflicts() compares resolved paths of volumes and plain paths", () => {
  const db = domain("db", { disks: [{ path: "/pools/default/web.qcow2" }] });
  const web = domain("web", { disks: [{ volume: "web.qcow2" }] });
  checkConflicts(web, [{ definition: db, running: true }]);
  const resolve = (disk: DiskDefinition) =>
    disk.volume === undefined ? undefined : `/pools/${disk.pool}/${disk.volume}`;
  clash(
    () => checkConflicts(web, [{ definition: db, running: true }], resolve),
    "disks[0].volume",
    "disks[0].volume: volume 'web.qcow2' of pool 'default' (/pools/default/web.qcow2) is in use by running domain 'db' (disks[0], read-write); stop that domain or give a copy",
    "db",
  );
});

Deno.test("checkConflicts() refuses a named tap a running domain uses", () => {
  const db = domain("db", { nics: [{}, { tap: "tap7" }] });
  const web = domain("web", { nics: [{ tap: "tap7" }] });
  checkConflicts(web, [{ definition: db, running: false }]);
  clash(
    () => checkConflicts(web, [{ definition: db, running: true }]),
    "nics[0].tap",
    "nics[0].tap: tap tap7 is in use by running domain 'db' (nics[1]); stop that domain or use tap \"auto\"",
    "db",
  );
});
