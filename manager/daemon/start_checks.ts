/**
 * The clash check made just before a domain starts: its disks against those of the
 * domains running now (defining a domain allows clashes with stopped domains, as libvirt
 * and xl do; starting it does not).
 *
 * @module
 */

import type { DomainDefinition } from "../api_types.ts";
import { checkConflicts, DefinitionError } from "../domain/definition.ts";
import type { OtherDomain } from "../domain/conflicts.ts";
import type { DomainEntry } from "./domain_entry.ts";
import { ApiError } from "./router.ts";

/** checkConflicts with its errors as 400s. */
export function conflicts(definition: DomainDefinition, others: OtherDomain[]): void {
  try {
    checkConflicts(definition, others);
  } catch (error) {
    if (error instanceof DefinitionError) throw new ApiError("invalid", error.message);
    throw error;
  }
}

/** Throws a 400 when `definition` clashes with a running domain. */
export function conflictsWithRunning(
  definition: DomainDefinition,
  entries: ReadonlyMap<string, DomainEntry>,
): void {
  const others = [...entries.values()]
    .filter((e) => e.definition.name !== definition.name)
    .map((e) => ({ definition: e.run?.record.definition ?? e.definition, running: !!e.run }));
  conflicts(definition, others);
}
