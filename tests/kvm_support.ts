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

/**
 * How long a KVM test may run unless it says otherwise: a hung guest or VMM must fail its
 * test, not hold CI until the job is killed. Generous, because the Linux boot tests alone
 * wait up to 120 s for a banner on a busy host.
 */
export const KVM_TEST_TIMEOUT_MS = 300_000;

/**
 * Registers a test that needs /dev/kvm (ignored, with a warning, where it is missing). It
 * fails after `timeoutMs` (default {@linkcode KVM_TEST_TIMEOUT_MS}).
 */
export function kvmTest(
  name: string,
  fn: () => void | Promise<void>,
  timeoutMs = KVM_TEST_TIMEOUT_MS,
): void {
  Deno.test(kvmTestDefinition(name, fn, timeoutMs));
}

/** The test `kvmTest` registers (exported for its own test). */
export function kvmTestDefinition(
  name: string,
  fn: () => void | Promise<void>,
  timeoutMs = KVM_TEST_TIMEOUT_MS,
): Deno.TestDefinition & { fn: () => Promise<void> } {
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new RangeError(`kvmTest ${name}: the timeout must be a positive number of ms`);
  }
  return {
    name: kvmUnavailable ? `${name} [SKIPPED: no KVM]` : name,
    ignore: kvmUnavailable !== undefined,
    fn: () => withTimeout(fn, timeoutMs, name),
  };
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

/**
 * Registers a KVM test that runs only when the environment variable `gate` is "1": for
 * tests written on a host without /dev/kvm that have not yet passed on one. Elsewhere it
 * is ignored under a name that says which variable runs it (scripts/allowed_skips lists
 * each gate CI tolerates, with its reason).
 */
export function optInKvmTest(
  gate: string,
  name: string,
  fn: () => void | Promise<void>,
  timeoutMs = KVM_TEST_TIMEOUT_MS,
): void {
  if (Deno.env.get(gate) === "1") kvmTest(name, fn, timeoutMs);
  else Deno.test({ name: `${name} [SKIPPED: set ${gate}=1]`, ignore: true, fn });
}
