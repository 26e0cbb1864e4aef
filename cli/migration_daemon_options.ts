/**
 * The live-migration flags of `denovisor daemon` (manager/migration/README.md): parsed
 * and checked here (a bad address, a key others can read, --migration-insecure off
 * loopback are usage errors before the daemon starts), handed to the daemon as
 * `MigrationFlags`. Without --migration-listen the daemon accepts no migration; the
 * credentials alone serve its outgoing ones.
 *
 * @module
 */

import {
  type MigrationFlags,
  MigrationOptionError,
  parseMigrationListen,
} from "../manager/migration/listen_options.ts";
import { UsageError } from "./usage_error.ts";

/** The parseArgs options of the migration flags. */
export const MIGRATION_DAEMON_OPTIONS = {
  "migration-listen": { type: "string" },
  "migration-cert": { type: "string" },
  "migration-key": { type: "string" },
  "migration-ca": { type: "string" },
  "migration-insecure": { type: "boolean" },
} as const;

/** The help lines of the migration flags. */
export const MIGRATION_DAEMON_HELP = `
Live migration ('denovisor migrate'; off unless --migration-listen is given):
  --migration-listen ADDR:PORT  Accept migrations there ([v6]:PORT for IPv6)
  --migration-cert FILE  This host's certificate (PEM), signed by the farm's CA
  --migration-key FILE   Its private key (must not be readable by group or others)
  --migration-ca FILE    The CA that signs every host's certificate: peers without
                         one are refused before any data flows (mutual TLS 1.3)
  --migration-insecure   Plain TCP instead, for tests on one machine: refused for
                         addresses outside 127.0.0.0/8 and ::1, and with certificates
The same credentials secure this daemon's outgoing migrations.`;

type Values = { [K in keyof typeof MIGRATION_DAEMON_OPTIONS]?: string | boolean };

/** The flags as `MigrationFlags`; the listener's are checked now (UsageError). */
export async function migrationFlags(values: Values): Promise<MigrationFlags> {
  const text = (key: keyof typeof MIGRATION_DAEMON_OPTIONS) =>
    typeof values[key] === "string" ? values[key] as string : undefined;
  const flags: MigrationFlags = {
    listen: text("migration-listen"),
    cert: text("migration-cert"),
    key: text("migration-key"),
    ca: text("migration-ca"),
    insecure: values["migration-insecure"] === true,
  };
  try {
    await parseMigrationListen(flags);
  } catch (error) {
    if (error instanceof MigrationOptionError) throw new UsageError(error.message);
    throw error;
  }
  return flags;
}
