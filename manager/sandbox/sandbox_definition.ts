/**
 * The `sandbox` member of a domain definition: absent or true (the default
 * confinement), false (none), or an object that tunes it.
 *
 * @module
 */

import type { DomainDefinition, SandboxDefinition } from "../api_types.ts";
import { DefinitionError, readChoice, readObject } from "../domain/definition_error.ts";
import { SECCOMP_MODES } from "../../vmm/sandbox/seccomp_filter.ts";

/** `{sandbox}` when the definition has one (so definitions without it stay as they were). */
export function readSandboxField(
  object: Record<string, unknown>,
): { sandbox?: boolean | SandboxDefinition } {
  const value = object.sandbox;
  if (value === undefined) return {};
  if (typeof value === "boolean") return { sandbox: value };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DefinitionError(
      "sandbox",
      'must be true, false or {"seccomp": "strict"|"log"|"off"}',
    );
  }
  const members = readObject(value, "sandbox", ["seccomp"]);
  const seccomp = readChoice(members, "seccomp", "sandbox", SECCOMP_MODES);
  return { sandbox: seccomp === undefined ? {} : { seccomp } };
}

/** `{cpu}` when the definition has one: a weight of 1-10000 and a quota such as "50%". */
export function readCpuField(
  object: Record<string, unknown>,
): { cpu?: { weight?: number; max?: string } } {
  if (object.cpu === undefined) return {};
  const members = readObject(object.cpu, "cpu", ["weight", "max"]);
  const cpu: { weight?: number; max?: string } = {};
  if (members.weight !== undefined) {
    const weight = members.weight;
    if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 1 || weight > 10000) {
      throw new DefinitionError(
        "cpu.weight",
        "must be a whole number from 1 to 10000 (default 100)",
      );
    }
    cpu.weight = weight;
  }
  if (members.max !== undefined) {
    const max = members.max;
    if (typeof max !== "string" || cpuPercent(max) === undefined) {
      throw new DefinitionError(
        "cpu.max",
        'must be a percentage of one CPU from 1% to 100000%, e.g. "50%" or "150%"',
      );
    }
    cpu.max = max;
  }
  return { cpu };
}

/** The percentage of "50%" (1% to 1000 CPUs), or undefined. */
export function cpuPercent(text: string): number | undefined {
  const match = text.match(/^(\d+(?:\.\d+)?)%$/);
  const percent = match ? Number(match[1]) : NaN;
  // Below 1% the kernel refuses the quota (at least 1 ms per 100 ms period).
  return percent >= 1 && percent <= 100_000 ? percent : undefined;
}

/** What the daemon applies to a domain's VMM. */
export interface SandboxSettings {
  enabled: boolean;
  seccomp: "strict" | "log" | "off";
}

/** The settings of `definition`, defaults filled in. */
export function sandboxSettings(
  definition: DomainDefinition,
  defaultSeccomp: SandboxSettings["seccomp"],
): SandboxSettings {
  const sandbox = definition.sandbox ?? true;
  if (sandbox === false) return { enabled: false, seccomp: "off" };
  if (sandbox === true) return { enabled: true, seccomp: defaultSeccomp };
  return { enabled: true, seccomp: sandbox.seccomp ?? defaultSeccomp };
}
