/**
 * Domain definitions in a farm: stored once in etcd (`definitions/<domain>`) and mirrored
 * into every daemon's own domain table (and so its local store, a cache that lets the
 * daemon work while etcd is away). A definition made through one daemon is created by
 * txn (the farm refuses a second domain of the same name); the others apply it from
 * their watch. A joining host brings the domains only it knows, and takes the farm's.
 *
 * @module
 */

import type { DomainDefinition } from "../api_types.ts";
import { ApiError } from "../../common/http/mod.ts";
import type { FarmMember } from "./farm_member.ts";

/** Stores a definition made through this daemon farm-wide; 409 if the farm has the name. */
export async function defineInFarm(member: FarmMember, definition: DomainDefinition) {
  if (!(await member.store.createDefinition(definition))) {
    throw new ApiError(
      "conflict",
      `name: farm '${member.farm}' already has a domain named '${definition.name}'; ` +
        `choose another name or edit that one`,
    );
  }
}

/** At join (and after the watch was down): local-only definitions up, the farm's down. */
export async function mergeDefinitions(member: FarmMember): Promise<void> {
  const farm = await member.store.definitions();
  for (const entry of member.domains.entries()) {
    if (entry.persistent && !farm.has(entry.definition.name)) {
      await member.store.createDefinition(entry.definition);
    }
  }
  for (const definition of farm.values()) await mirrorDefinition(member, definition);
}

/** Applies a farm definition to this daemon's table (define or edit; errors logged). */
export async function mirrorDefinition(
  member: FarmMember,
  definition: DomainDefinition,
): Promise<void> {
  const name = definition.name;
  try {
    const local = member.domains.entries().find((e) => e.definition.name === name);
    if (local === undefined) await member.domains.define(definition);
    else if (JSON.stringify(local.definition) !== JSON.stringify(definition)) {
      await member.domains.edit(name, definition);
    }
  } catch (error) {
    member.log(`cannot take the farm's definition of '${name}': ${(error as Error).message}`);
  }
}
