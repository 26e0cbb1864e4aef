import assert from "node:assert/strict";
import { accountIds, FALLBACK_VMM_ID, vmmUser, VmmUserError } from "./vmm_user.ts";

Deno.test("accountIds() reads a passwd line", () => {
  const passwd =
    "root:x:0:0:root:/root:/bin/bash\ndenovisor:x:998:997::/nonexistent:/usr/sbin/nologin\n";
  assert.deepEqual(accountIds("denovisor", passwd), { uid: 998, gid: 997 });
  assert.equal(accountIds("qemu", passwd), undefined);
});

Deno.test("vmmUser() takes DENOVISOR_VMM_USER=UID:GID, never root, else the account or the fallback", () => {
  assert.deepEqual(vmmUser("1234:5678"), { uid: 1234, gid: 5678, source: "DENOVISOR_VMM_USER" });
  for (const bad of ["0:5", "5:0", "denovisor", "12", "-1:2"]) {
    assert.throws(() => vmmUser(bad), VmmUserError, bad);
  }
  const user = vmmUser("");
  assert.notEqual(user.uid, 0);
  if (user.source !== "account denovisor") {
    assert.deepEqual([user.uid, user.gid], [FALLBACK_VMM_ID, FALLBACK_VMM_ID]);
  }
});
