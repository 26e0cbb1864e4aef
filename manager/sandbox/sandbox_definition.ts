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
