/**
 * Test helpers for tests that need /dev/kvm: they are skipped, loudly, where it is
 * missing, never passed silently.
 *
 * @module
 */

import { Kvm } from "../core/kvm.ts";

function probeKvm(): string | undefined {
  try {
    Kvm.open().close();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** Why KVM tests cannot run here, or undefined when they can. */
export const kvmUnavailable = probeKvm();

if (kvmUnavailable) {
  console.error(
    `\n!!! KVM TESTS SKIPPED: ${kvmUnavailable} !!!\n` +
      `!!! Every test that runs a VM is reported as ignored below. !!!\n`,
  );
}

/** Registers a test that needs /dev/kvm (ignored, with a warning, where it is missing). */
export function kvmTest(name: string, fn: () => void | Promise<void>, timeoutMs = 0): void {
  Deno.test({
    name: kvmUnavailable ? `${name} [SKIPPED: no KVM]` : name,
    ignore: kvmUnavailable !== undefined,
    fn: timeoutMs > 0 ? () => withTimeout(fn, timeoutMs, name) : fn,
  });
}

async function withTimeout(fn: () => void | Promise<void>, ms: number, name: string) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: timed out after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
