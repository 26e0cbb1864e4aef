/**
 * `denovisor migration-certs DIR HOST[=ADDR,...]...`: a CA and host certificates for a
 * test farm's migration channels (manager/migration/certs.ts).
 *
 * @module
 */

import { ensureCa, makeHostCert, parseCertHost } from "../manager/migration/certs.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";

export const MIGRATION_CERTS_HELP = `Usage: denovisor migration-certs DIR HOST[=ADDR,...]...

Makes the certificates a test farm's daemons need for live migration, with openssl:
DIR/ca.pem and DIR/ca.key (a new CA, or the one already in DIR), and for each HOST
DIR/HOST.pem and DIR/HOST.key (mode 600) signed by it, naming HOST and each ADDR (an
IP address or a DNS name the other daemons dial) as the certificate's subject
alternative names. Each daemon then takes
  --migration-cert DIR/HOST.pem --migration-key DIR/HOST.key --migration-ca DIR/ca.pem
For a production farm keep ca.key offline (manager/migration/README.md shows the
openssl steps to follow with your own CA).

Example:
  denovisor migration-certs /etc/denovisor/migration host-a=10.0.0.1 host-b=10.0.0.2`;

/** Runs the command; returns the exit status. */
export async function migrationCertsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("migration-certs", args, {
    help: { type: "boolean", short: "h" },
  }, true);
  if (values.help) {
    console.log(MIGRATION_CERTS_HELP);
    return 0;
  }
  const [dir, ...hostArgs] = positionals;
  if (dir === undefined || hostArgs.length === 0) {
    throw new UsageError(
      "migration-certs: give the directory and at least one HOST[=ADDR,...]; " +
        "usage: denovisor migration-certs DIR HOST[=ADDR,...]...",
    );
  }
  const hosts = hostArgs.map((text) => {
    try {
      return parseCertHost(text);
    } catch (error) {
      throw new UsageError(`migration-certs: ${(error as Error).message}`);
    }
  });
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await ensureCa(dir);
  console.log(`${ca.made ? "Made" : "Kept"} the CA ${ca.cert}`);
  for (const host of hosts) {
    const made = await makeHostCert(dir, host, ca);
    console.log(
      `Made ${made.cert} and ${made.key} for ${[host.name, ...host.addresses].join(", ")}`,
    );
  }
  return 0;
}
