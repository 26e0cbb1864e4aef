/**
 * Live moves between farm hosts: an intent with `live` set (farm_intents.ts) is carried
 * out by live migration (manager/daemon/migration_ops.ts) instead of a stop and a start.
 *
 * 1. The target sees the intent, drops its idle mirror copy of the definition (the
 *    migration brings the definition; a name defined there would be refused), remembers
 *    that the domain is coming (its reconcile must not destroy a copy that runs here
 *    while the source still owns it) and marks the intent `ready`.
 * 2. The source waits for `ready`, migrates the guest to the target's migration listener
 *    (the address in its host record), then hands the owner key over by transaction,
 *    bound to the target's lease, and marks the intent done with the migration's figures.
 *    Until then its reconcile neither releases the key nor restarts anything.
 * 3. Both take the farm's definition back into their tables when it is over (the source
 *    undefined its copy when its VMM ended; a target whose migration failed has none).
 *
 * If the migration fails before the switch-over, the guest runs on at the source, which
 * still owns it; the intent says why (the requester may fall back to a stop and start).
 *
 * @module
 */

import type { IntentRecord } from "./farm_records.ts";
import type { FarmMember } from "./farm_member.ts";
import { mirrorDefinition } from "./farm_definitions.ts";
import type { HostRecord } from "./farm_records.ts";

/** How long the source waits for the target to be ready. */
const READY_TIMEOUT_MS = 30_000;
/** What a live move may take beyond the migration's own timeout (default 3600 s). */
export const LIVE_MARGIN_MS = 120_000;

/** The ADDR:PORT the other hosts dial for `host`'s migration listener, if it has one. */
export function migrationAddress(host: HostRecord): string | undefined {
  const listen = host.migrationListen;
  if (listen === undefined) return undefined;
  const match = /^(.*):(\d+)$/.exec(listen);
  if (!match) return undefined;
  const [, address, port] = match;
  const unspecified = ["", "0.0.0.0", "[::]", "::", "*"].includes(address);
  if (!unspecified) return listen;
  return host.address.includes(":") && !host.address.startsWith("[")
    ? `[${host.address}]:${port}`
    : `${host.address}:${port}`;
}

/** Target side: get ready to receive `domain`, then wait for the move's end. */
export async function receiveLive(
  member: FarmMember,
  domain: string,
  intent: IntentRecord,
): Promise<void> {
  const { domains, store } = member;
  const entry = domains.entries().find((e) => e.definition.name === domain);
  try {
    if (entry?.run !== undefined) throw new Error(`'${domain}' already runs on '${member.host}'`);
    if (member.migrations === undefined) throw new Error(`'${member.host}' takes no migrations`);
    member.incoming.add(domain);
    if (entry !== undefined) await domains.undefine(domain);
    if (!(await store.updateIntent(domain, intent.id, (i) => ({ ...i, ready: true })))) return;
  } catch (error) {
    member.incoming.delete(domain);
    await store.finishIntent(domain, intent.id, (error as Error).message).catch(() => {});
    await restoreMirror(member, domain);
    return;
  }
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS + liveTimeoutMs(intent);
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const now = await store.intent(domain).catch(() => intent);
      if (now?.id !== intent.id || now.status !== "pending") break;
    }
  } finally {
    member.incoming.delete(domain);
    await restoreMirror(member, domain);
  }
}

/** Source side: wait for the target, migrate, hand the owner key over. */
export async function migrateLive(
  member: FarmMember,
  domain: string,
  intent: IntentRecord,
): Promise<void> {
  const { store } = member;
  member.moving.add(domain);
  try {
    if (member.migrations === undefined) {
      throw new Error(`'${member.host}' cannot migrate (no migration settings)`);
    }
    const target = await store.liveHost(intent.host);
    if (target === undefined) throw new Error(`host '${intent.host}' is not up`);
    const dest = migrationAddress(target.record);
    if (dest === undefined) throw new Error(`host '${intent.host}' has no migration listener`);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (true) {
      const now = await store.intent(domain);
      if (now?.id !== intent.id || now.status !== "pending") return; // Refused or replaced.
      if (now.ready) break;
      if (Date.now() > deadline) {
        throw new Error(`host '${intent.host}' did not get ready within 30 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const result = await member.migrations.migrate(domain, {
      ...intent.live,
      dest,
      wait: true,
    });
    if (!(await store.handOver(domain, member.host, intent.host, target.lease))) {
      member.log(`'${domain}' moved to '${intent.host}' but its owner key could not be handed`);
    }
    member.owners.set(domain, intent.host);
    await store.finishIntent(domain, intent.id, undefined, result);
    member.log(`migrated '${domain}' to '${intent.host}' (${dest}) as the farm asked`);
  } catch (error) {
    const message = (error as Error).message;
    member.log(`live move of '${domain}' to '${intent.host}': ${message}`);
    await store.finishIntent(domain, intent.id, message).catch(() => {});
  } finally {
    member.moving.delete(domain);
    await restoreMirror(member, domain);
  }
}

/** The migration's timeout (the intent's or the default 3600 s) plus a margin. */
export function liveTimeoutMs(intent: Pick<IntentRecord, "live">): number {
  return (intent.live?.timeoutS ?? 3600) * 1000 + LIVE_MARGIN_MS;
}

/** Takes the farm's definition of `domain` back into this host's table if it has none. */
async function restoreMirror(member: FarmMember, domain: string): Promise<void> {
  if (member.domains.entries().some((e) => e.definition.name === domain)) return;
  const definition = await member.store.definition(domain).catch(() => undefined);
  if (definition !== undefined) await mirrorDefinition(member, definition);
}
