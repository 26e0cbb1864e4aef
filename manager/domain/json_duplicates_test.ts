import assert from "node:assert/strict";
import { findDuplicateKey } from "./json_duplicates.ts";

Deno.test("findDuplicateKey() finds a key given twice at the top level", () => {
  assert.deepEqual(findDuplicateKey(`{"name": "a", "memory": 64, "memory": 128}`), {
    key: "memory",
    path: "",
  });
});

Deno.test("findDuplicateKey() names the nested object that holds the duplicate", () => {
  const text = `{"name": "a", "disks": [{"path": "/a"}, {"path": "/b", "readOnly": true,
    "readOnly": false}], "boot": {"kernel": "/k"}}`;
  assert.deepEqual(findDuplicateKey(text), { key: "readOnly", path: "disks[1]" });
  assert.deepEqual(findDuplicateKey(`{"a b": {"x": [[1], {"k": 1, "k": 2}]}}`), {
    key: "k",
    path: `"a b".x[1]`,
  });
});

Deno.test("findDuplicateKey() compares keys as JSON decodes them", () => {
  assert.deepEqual(findDuplicateKey(`{"name": 1, "n\\u0061me": 2}`), { key: "name", path: "" });
});

Deno.test("findDuplicateKey() accepts the same key in different objects and keys in strings", () => {
  assert.equal(
    findDuplicateKey(`{"disks": [{"path": "/a"}, {"path": "/b"}], "path": "{\\"path\\": ,"}`),
    undefined,
  );
  assert.equal(findDuplicateKey(`[{"a": 1}, {"a": 2}, "a", {"b": {"a": [1, "a"]}}]`), undefined);
  assert.equal(findDuplicateKey(`"just a string"`), undefined);
  assert.equal(findDuplicateKey(`{}`), undefined);
});
