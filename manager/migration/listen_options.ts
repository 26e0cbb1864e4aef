/**
 * The daemon's migration options: `--migration-listen ADDR:PORT` (off by default) and
 * how the channel is secured: `--migration-cert/--migration-key/--migration-ca` (mutual
 * TLS; the key must be private to its owner, as ssh requires of its keys), or
 * `--migration-insecure`, refused for addresses outside the loopback range.
 *
 * @module
 */

import { isIPv6 } from "node:net";
import { DenovisorError } from "../../common/errors.ts";
import { isLoopback, type MigrationSecurity } from "./channel.ts";

/** The flags as given (each absent when not given). */
export interface MigrationFlags {
  listen?: string;
  cert?: string;
  key?: string;
  ca?: string;
  insecure?: boolean;
}

/** A bad migration option: the message names the flag and what to give. */
export class MigrationOptionError extends DenovisorError {
  constructor(message: string) {
    super("usage", message);
  }
}

/** Splits `HOST:PORT` (`[v6]:PORT` for IPv6). */
export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new MigrationOptionError(
      `${flag} ${JSON.stringify(text)}: expected HOST:PORT (e.g. 10.0.0.2:4789, [fd00::2]:4789)`,
    );
  }
  const host = match[1] ?? match[2];
  if (match[1] !== undefined && !isIPv6(host)) {
    throw new MigrationOptionError(
      `${flag} ${JSON.stringify(text)}: ${host} is not an IPv6 address`,
    );
  }
  return { host, port };
}

/** How the channel is secured, from the flags (the same on the sending side). */
export async function migrationSecurity(
  flags: MigrationFlags,
  host: string,
): Promise<MigrationSecurity> {
  const files = [flags.cert, flags.key, flags.ca];
  const given = files.filter((f) => f !== undefined).length;
  if (flags.insecure) {
    if (given > 0) {
      throw new MigrationOptionError(
        "--migration-insecure and --migration-cert/-key/-ca exclude each other; give one",
      );
    }
    if (!isLoopback(host)) {
      throw new MigrationOptionError(
        `--migration-insecure is only allowed on loopback addresses, not ${host}`,
      );
    }
    return { insecure: true };
  }
  if (given !== 3) {
    throw new MigrationOptionError(
      "Migration needs --migration-cert, --migration-key and --migration-ca " +
        "(or --migration-insecure on a loopback address, for tests)",
    );
  }
  const key = flags.key!;
  const info = await Deno.stat(key).catch((error) => {
    throw new MigrationOptionError(`--migration-key ${key}: ${(error as Error).message}`);
  });
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    throw new MigrationOptionError(
      `--migration-key ${key} is readable by others (mode 0${
        (info.mode & 0o777).toString(8)
      }); chmod 600 it`,
    );
  }
  return { tls: { cert: flags.cert!, key, ca: flags.ca! } };
}

/** The listener's address and security, or null when `--migration-listen` is not given. */
export async function parseMigrationListen(
  flags: MigrationFlags,
): Promise<{ host: string; port: number; security: MigrationSecurity } | null> {
  // Credentials without a listener still serve outgoing migrations (checked then).
  if (flags.listen === undefined) return null;
  const { host, port } = parseHostPort(flags.listen, "--migration-listen");
  return { host, port, security: await migrationSecurity(flags, host) };
}
