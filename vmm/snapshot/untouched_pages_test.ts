import assert from "node:assert/strict";
import { HostMapping } from "../../ffi/mman.ts";
import { nonZeroRuns } from "./page_runs.ts";
import { PAGE_SIZE } from "./state_format.ts";
import { untouchedPages } from "./untouched_pages.ts";

Deno.test("untouchedPages() marks exactly the pages never written nor read", () => {
  using mapping = HostMapping.anonymous(16 * PAGE_SIZE);
  assert.equal(mapping.anonymous, true);
  const bytes = mapping.bytes();
  bytes[3 * PAGE_SIZE + 5] = 1;
  bytes[7 * PAGE_SIZE] = 2;
  assert.equal(bytes[9 * PAGE_SIZE + 100], 0); // a read maps the zero page: touched
  const untouched = untouchedPages(mapping.address, mapping.size);
  assert.ok(untouched, "/proc/self/pagemap is readable here");
  assert.deepEqual(
    [...untouched.entries()].filter(([, value]) => value === 0).map(([page]) => page),
    [3, 7, 9],
  );
  // The runs are the same with the map as without it, which reads every page.
  assert.deepEqual(nonZeroRuns(bytes, untouched), nonZeroRuns(bytes));
  assert.deepEqual(nonZeroRuns(bytes, untouched), [
    { offset: 3 * PAGE_SIZE, length: PAGE_SIZE },
    { offset: 7 * PAGE_SIZE, length: PAGE_SIZE },
  ]);
});

Deno.test("untouchedPages() gives undefined for a range it cannot describe", () => {
  assert.equal(untouchedPages(4097n, PAGE_SIZE), undefined);
  assert.equal(untouchedPages(0n, 100), undefined);
});
