import assert from "node:assert/strict";
import { StateReader } from "../../common/persist.ts";
import { fuzzRestore } from "./persist_fuzz.ts";

/** A one-field piece whose restore can be broken in the ways the fuzzer must catch. */
class Counter {
  value = 3;
  constructor(readonly flaw?: "throws-type-error" | "changes-then-refuses" | "accepts-anything") {}
  save() {
    return { version: 1, value: this.value };
  }
  restore(state: unknown) {
    if (this.flaw === "accepts-anything") {
      this.value = (state as { value: number })?.value;
      return;
    }
    if (this.flaw === "throws-type-error") {
      this.value = (state as { value: number }).value.valueOf();
      return;
    }
    const r = new StateReader(state);
    r.version([1]);
    if (this.flaw === "changes-then-refuses") this.value = -1;
    this.value = r.integer("value", 0, 10);
  }
}

Deno.test("fuzzRestore() passes a correct restore", () => {
  const report = fuzzRestore(new Counter(), { version: 1, value: 3 });
  assert.ok(report.refused > 0 && report.refused < report.tried);
});

Deno.test("fuzzRestore() catches a restore that throws something else than StateError", () => {
  assert.throws(
    () => fuzzRestore(new Counter("throws-type-error"), { version: 1, value: 3 }),
    /not a StateError/,
  );
});

Deno.test("fuzzRestore() catches a refused restore that changed the object", () => {
  assert.throws(
    () => fuzzRestore(new Counter("changes-then-refuses"), { version: 1, value: 3 }),
    /a refused restore changed the object/,
  );
});

Deno.test("fuzzRestore() catches a restore that accepts a wrong type or version", () => {
  assert.throws(
    () => fuzzRestore(new Counter("accepts-anything"), { version: 1, value: 3 }),
    /restore accepted it/,
  );
});
