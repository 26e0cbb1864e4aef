/**
 * The daemon's migration listener (`--migration-listen ADDR:PORT`, off by default):
 * each authenticated peer's stream goes through `handleIncoming` with the daemon's
 * incoming policy (migration_ops.ts). A daemon without the flag listens nowhere, so a
 * source dialling it is refused before anything is sent.
 *
 * @module
 */

import { listenMigration, type MigrationListener } from "../migration/channel.ts";
import { handleIncoming } from "../migration/daemon_side.ts";
import { type MigrationFlags, parseMigrationListen } from "../migration/listen_options.ts";
import type { DomainMigrations } from "./migration_ops.ts";

/** Starts listening when the flags ask for it; undefined when they do not. */
export async function startMigrationListener(
  migrations: DomainMigrations,
  flags: MigrationFlags,
  log: (line: string) => void,
): Promise<MigrationListener | undefined> {
  const listen = await parseMigrationListen(flags);
  if (listen === null) return undefined;
  const listener = await listenMigration(
    listen,
    (channel) => {
      const { policy, onProgress } = migrations.incoming(channel.peer);
      handleIncoming(channel, policy, onProgress).then(
        (name) => log(`domain '${name}' migrated here from ${channel.peer}`),
        (error) => log(`incoming migration from ${channel.peer} failed: ${error.message}`),
      );
    },
    (reason) => log(`migration peer refused: ${reason}`),
  );
  const mode = "tls" in listen.security ? "mutual TLS" : "INSECURE plain TCP (loopback only)";
  log(`accepting migrations on ${listen.host}:${listener.port} (${mode})`);
  return listener;
}
