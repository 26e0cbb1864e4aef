/**
 * A host's membership lease: granted at join, renewed every sixth of its TTL, and the
 * self-fencing deadline. A daemon that has not renewed its lease for `fenceAfterMs`
 * (the TTL less a third of it, at least 1 s; counted from the moment the last successful
 * renewal was *sent*, so always before etcd can expire it) calls `onFence`: its HA
 * domains must die before any other host may restart them. When etcd answers again and the lease is gone,
 * `onLost` runs (the daemon rejoins with a new lease).
 *
 * @module
 */

import type { EtcdKv } from "./etcd_types.ts";

/** Options of `MemberLease`. */
export interface LeaseOptions {
  ttlSeconds: number;
  /** The HA domains must be destroyed now: the lease may expire soon. */
  onFence: () => void;
  /** The lease has expired (etcd said so); rejoin. */
  onLost: () => void;
  /** A renewal succeeded after a fence: the lease never expired (etcd was slow). */
  onRecover: () => void;
  log: (line: string) => void;
}

/** Minimum TTL: etcd refuses less than ceil(1.5 × election timeout) = 2 s by default. */
export const MIN_TTL_SECONDS = 3;

/** When a host that has not renewed its lease fences itself (ms after the last renewal). */
export function fenceAfterMs(ttlSeconds: number): number {
  return ttlSeconds * 1000 - Math.max(1000, (ttlSeconds * 1000) / 3);
}

/** The lease of one joined host. */
export class MemberLease {
  readonly #etcd: EtcdKv;
  readonly #options: LeaseOptions;
  #id = "0";
  #lastRenewSent = 0;
  #renewTimer?: ReturnType<typeof setInterval>;
  #fenceTimer?: ReturnType<typeof setInterval>;
  #fenced = false;
  #lost = false;
  #renewing = false;

  constructor(etcd: EtcdKv, options: LeaseOptions) {
    this.#etcd = etcd;
    this.#options = options;
  }

  /** The current lease id. */
  get id(): string {
    return this.#id;
  }

  /** Whether the host fenced itself and has not rejoined since. */
  get fenced(): boolean {
    return this.#fenced;
  }

  /** When the host must have fenced itself, after the last renewal sent. */
  get fenceAfterMs(): number {
    return fenceAfterMs(this.#options.ttlSeconds);
  }

  /** Grants a new lease and starts renewing it. */
  async grant(): Promise<string> {
    const sent = Date.now();
    return this.#start(await this.#etcd.grant(this.#options.ttlSeconds), sent);
  }

  /**
   * Takes over `lease` (a previous daemon of this host's, killed moments ago) when etcd
   * still has it; false when it has expired.
   */
  async resume(lease: string): Promise<boolean> {
    const sent = Date.now();
    if (!(await this.#etcd.keepAlive(lease) > 0)) return false;
    this.#start(lease, sent);
    return true;
  }

  #start(lease: string, sent: number): string {
    this.#id = lease;
    this.#lastRenewSent = sent;
    this.#fenced = false;
    this.#lost = false;
    // Several renewals fit before the fence deadline: one slow answer is not a fence.
    const period = (this.#options.ttlSeconds * 1000) / 6;
    clearInterval(this.#renewTimer);
    clearInterval(this.#fenceTimer);
    this.#renewTimer = setInterval(() => this.#renew(), period);
    this.#fenceTimer = setInterval(() => this.#checkFence(), 250);
    return this.#id;
  }

  /** Stops renewing (the lease then expires, or is revoked by the caller). */
  stop(): void {
    clearInterval(this.#renewTimer);
    clearInterval(this.#fenceTimer);
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#lost) return;
    this.#renewing = true;
    const sent = Date.now();
    try {
      const ttl = await this.#etcd.keepAlive(this.#id);
      if (ttl > 0) {
        this.#lastRenewSent = sent;
        if (this.#fenced) {
          // Nobody could take over: the owner keys lived on with the lease.
          this.#fenced = false;
          this.#options.log(`the farm lease was renewed again; the fence is over`);
          this.#options.onRecover();
        }
        return;
      }
      this.#lost = true;
      this.#options.log(`the farm lease ${this.#id} has expired; rejoining`);
      // Fencing first: a lost lease means others may be restarting our HA domains.
      this.#fence();
      this.#options.onLost();
    } catch (error) {
      this.#options.log(`cannot renew the farm lease: ${(error as Error).message}`);
    } finally {
      this.#renewing = false;
    }
  }

  #checkFence(): void {
    if (Date.now() - this.#lastRenewSent >= this.fenceAfterMs) this.#fence();
  }

  #fence(): void {
    if (this.#fenced) return;
    this.#fenced = true;
    this.#options.log(
      `the farm lease was not renewed for ${this.fenceAfterMs / 1000} s; fencing: ` +
        `destroying this host's HA domains before the lease expires`,
    );
    this.#options.onFence();
  }
}

/** The lease id a previous daemon of this host kept in `path`, if any. */
export async function readLeaseFile(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return undefined;
  }
}

/** Keeps the lease id in `path` for the next daemon of this host (best effort). */
export async function writeLeaseFile(
  path: string | undefined,
  lease: string,
  log: (line: string) => void,
): Promise<void> {
  if (path === undefined) return;
  await Deno.writeTextFile(path, `${lease}\n`, { mode: 0o600 })
    .catch((e) => log(`cannot keep the lease id in ${path}: ${e.message}`));
}
