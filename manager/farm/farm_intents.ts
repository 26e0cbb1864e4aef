/**
 * Intents: how one daemon asks another to act, through etcd instead of a direct call
 * (the farm's truth stays in etcd and no host-to-host channel is needed). An intent
 * `intents/<domain>` names the host that should run the domain and, for a move, the host
 * that must stop it first. The `from` host shuts the domain down (30 s, then destroys it)
 * and releases its owner key; the target host waits for the key to be free, claims it and
 * starts the domain, then marks the intent done or failed. The requester polls the
 * intent for that outcome. A live move (`live` set) is a migration instead of the stop
 * and the start (farm_live_move.ts).
 *
 * @module
 */

import { ApiError } from "../../common/http/mod.ts";
import type { IntentRecord } from "./farm_records.ts";
import { parseRecord } from "./farm_records.ts";
import type { FarmMember } from "./farm_member.ts";
import { mirrorDefinition } from "./farm_definitions.ts";
import { liveTimeoutMs, migrateLive, receiveLive } from "./farm_live_move.ts";
import { answerForwarded } from "./farm_forward.ts";

/** How long a requester waits for an intent's outcome. */
const INTENT_TIMEOUT_MS = 180_000;
/** How long a forwarded verb's answer may take. */
const FORWARD_TIMEOUT_MS = 60_000;
/** How long the target waits for the previous owner to let go. */
const RELEASE_TIMEOUT_MS = 120_000;
/** Seconds a moved domain's guest gets to power off before it is destroyed. */
const MOVE_SHUTDOWN_SECONDS = 30;

/** The intents of one farm member. */
export class FarmIntents {
  readonly #member: FarmMember;
  readonly #active = new Set<string>();
  /** Intents whose stop part this host has done (a move stays pending until the start). */
  readonly #stopped = new Set<string>();

  constructor(member: FarmMember) {
    this.#member = member;
  }

  /**
   * Asks `host` to run `domain` (stopping it on `from` first) and waits for the outcome;
   * throws a 409 when another intent for the domain is pending, and the target's error
   * when it failed.
   */
  async request(
    domain: string,
    host: string,
    reason: string,
    from?: string,
    stop?: "shutdown" | "destroy",
    live?: IntentRecord["live"],
    forward?: IntentRecord["forward"],
  ): Promise<IntentRecord> {
    const member = this.#member;
    const intent: IntentRecord = {
      id: crypto.randomUUID(),
      host,
      ...(from ? { from } : {}),
      ...(stop ? { stop } : {}),
      ...(live ? { live } : {}),
      ...(forward ? { forward } : {}),
      reason,
      requestedBy: member.host,
      at: new Date().toISOString(),
      status: "pending",
    };
    if (!(await member.store.putIntent(domain, intent))) {
      throw new ApiError(
        "conflict",
        `Another start or move of '${domain}' is under way; wait for it ('denovisor farm events')`,
      );
    }
    // A forwarded verb (stats, logs...) is no farm event: it changes nothing farm-wide.
    if (!forward) {
      await member.store.event({
        host: member.host,
        kind: "intent",
        domain,
        detail: host === ""
          ? `${stop ?? "shutdown"} on '${from}': ${reason}`
          : `${
            from ? `${live ? "live " : ""}move from '${from}' ` : "start "
          }on '${host}': ${reason}`,
      });
    }
    const timeoutMs = live
      ? liveTimeoutMs(intent)
      : forward
      ? FORWARD_TIMEOUT_MS
      : INTENT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, forward ? 50 : 250));
      const now = await member.store.intent(domain);
      if (now?.id !== intent.id) {
        throw new ApiError("conflict", `The request for '${domain}' was replaced by another`);
      }
      if (now.status === "done") return now;
      if (now.status === "failed") {
        throw new ApiError(
          "conflict",
          forward
            ? `Host '${from}' could not answer for '${domain}': ${now.error}`
            : host === ""
            ? `Host '${from}' could not stop '${domain}': ${now.error}`
            : live
            ? `'${domain}' could not migrate from '${from}' to '${host}': ${now.error}`
            : `Host '${host}' could not start '${domain}': ${now.error}`,
        );
      }
    }
    throw new ApiError(
      "timeout",
      `Host '${host || from}' did not ${forward ? "answer for" : "start"} '${domain}' ` +
        `within ${timeoutMs / 1000} s; ` +
        `see 'denovisor farm events' and that host's log`,
    );
  }

  /** Acts on an intent seen by the watch (or a scan). */
  handle(domain: string, value: string): void {
    const intent = parseRecord<IntentRecord>(value);
    const member = this.#member;
    if (intent?.status !== "pending" || this.#active.has(intent.id)) return;
    if (intent.forward !== undefined) {
      if (intent.from !== member.host || this.#stopped.has(intent.id)) return;
      this.#active.add(intent.id);
      this.#stopped.add(intent.id);
      answerForwarded(member, domain, intent).catch((e) =>
        member.log(`answering for '${domain}': ${e}`)
      ).finally(() => this.#active.delete(intent.id));
      return;
    }
    if (intent.live !== undefined) {
      // A live move: the source migrates, the target makes room; each only once.
      const role = intent.from === member.host
        ? migrateLive
        : intent.host === member.host
        ? receiveLive
        : undefined;
      if (role === undefined || this.#stopped.has(intent.id)) return;
      this.#active.add(intent.id);
      this.#stopped.add(intent.id);
      role(member, domain, intent).catch((e) => member.log(`live move of '${domain}': ${e}`))
        .finally(() => this.#active.delete(intent.id));
      return;
    }
    if (intent.from === member.host && !this.#stopped.has(intent.id)) {
      this.#active.add(intent.id);
      this.#stopped.add(intent.id);
      this.#stopHere(domain, intent.stop ?? "shutdown").then(
        // A stop alone is done once the domain is off here.
        () => intent.host === "" ? member.store.finishIntent(domain, intent.id) : undefined,
        (e) => {
          member.log(`stopping '${domain}' as asked by '${intent.requestedBy}': ${e.message}`);
          return member.store.finishIntent(domain, intent.id, e.message);
        },
      ).catch(() => {}).finally(() => this.#active.delete(intent.id));
    }
    if (intent.host === member.host) {
      this.#active.add(intent.id);
      this.#startHere(domain, intent).finally(() => this.#active.delete(intent.id));
    }
  }

  /** Handles every pending intent (after the watch was down). */
  async scan(): Promise<void> {
    for (const { domain, intent } of await this.#member.store.intents()) {
      this.handle(domain, JSON.stringify(intent));
    }
  }

  async #stopHere(domain: string, how: "shutdown" | "destroy"): Promise<void> {
    const member = this.#member;
    const { domains } = member;
    const { done } = await domains.locked(domain, async (entry) => {
      if (entry.run && how === "destroy") {
        await domains.lifecycle.destroy(entry);
        return { done: undefined };
      }
      return entry.run && entry.state !== "shutting-down"
        ? await domains.lifecycle.shutdown(entry, { timeoutSeconds: MOVE_SHUTDOWN_SECONDS })
        : { done: entry.run?.handled };
    });
    if (done) await done;
    // Through the lock, which the end handling holds until the domain is off.
    await domains.locked(domain, () => Promise.resolve()).catch(() => {});
    await member.release(domain);
    member.log(`stopped '${domain}' (${how}) as the farm asked`);
  }

  async #startHere(domain: string, intent: IntentRecord): Promise<void> {
    const member = this.#member;
    try {
      const deadline = Date.now() + RELEASE_TIMEOUT_MS;
      while (true) {
        const owner = await member.owner(domain);
        if (owner === undefined) break;
        if (Date.now() > deadline) {
          throw new Error(`host '${owner.owner.host}' did not release it within 120 s`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      // The definition may not have reached this host's table yet (the watch lags).
      if (!member.domains.entries().some((e) => e.definition.name === domain)) {
        const definition = await member.store.definition(domain);
        if (definition !== undefined) await mirrorDefinition(member, definition);
      }
      await member.startHere(domain);
      await member.store.finishIntent(domain, intent.id);
    } catch (error) {
      const message = (error as Error).message;
      member.log(`cannot start '${domain}' as asked by '${intent.requestedBy}': ${message}`);
      await member.store.finishIntent(domain, intent.id, message).catch(() => {});
    }
  }
}
