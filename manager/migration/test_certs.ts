/**
 * Test helper: CAs and host certificates for the channel and daemon tests, made by the
 * same code as `denovisor migration-certs` (./certs.ts), with names the tests choose: a
 * farm's CA and a rogue one side by side in one directory, hosts reachable on loopback.
 *
 * @module
 */

import { join } from "node:path";
import { ensureCa, makeHostCert as makeSignedHostCert } from "./certs.ts";

/** Makes a CA in `dir/<name>-ca/`; returns its paths. */
export async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const home = join(dir, `${name}-ca`);
  await Deno.mkdir(home, { recursive: true });
  const { cert, key } = await ensureCa(home);
  return { cert, key };
}

/** Makes a host certificate for `cn` (also valid for 127.0.0.1 and localhost) signed by `ca`. */
export function makeHostCert(
  dir: string,
  cn: string,
  ca: { cert: string; key: string },
): Promise<{ cert: string; key: string }> {
  return makeSignedHostCert(dir, { name: cn, addresses: ["127.0.0.1", "localhost"] }, ca);
}
