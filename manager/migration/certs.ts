/**
 * Certificates for a test farm's migration channels (`denovisor migration-certs`): one
 * self-signed CA (P-256, ten years) and, per host, a key and a certificate it signs with
 * the host's names and addresses as subject alternative names and both TLS uses (each
 * daemon is a server to its sources and a client to its destinations). Made with the
 * openssl command, as manager/migration/README.md shows by hand; keys are 0600. For a
 * production farm, keep the CA key offline and sign with the site's own process.
 *
 * @module
 */

import { isIP } from "node:net";
import { join } from "node:path";
import { DenovisorError } from "../../common/errors.ts";

/** openssl is missing or refused a step. */
export class CertificateError extends DenovisorError {}

/** A host to certify: its name (the CN and a DNS name) and the addresses peers dial. */
export interface CertHost {
  name: string;
  /** IP addresses or DNS names; the name itself is always included. */
  addresses: string[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;

/** Parses `NAME[=ADDR,ADDR...]` as the command line gives it. */
export function parseCertHost(text: string): CertHost {
  const [name, list] = text.split("=", 2);
  const addresses = list === undefined ? [] : list.split(",").filter((a) => a !== "");
  for (const value of [name, ...addresses]) {
    if (isIP(value) === 0 && !NAME.test(value)) {
      throw new CertificateError(
        "usage",
        `${JSON.stringify(value)} in ${JSON.stringify(text)} is neither an IP address nor a ` +
          `host name; write NAME[=ADDR,ADDR...], e.g. host-a=10.0.0.1`,
      );
    }
  }
  return { name, addresses };
}

async function openssl(args: string[], cwd: string): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
      .output();
  } catch (error) {
    throw new CertificateError(
      "unavailable",
      `Cannot run openssl (${(error as Error).message}); install it (apt-get install openssl)`,
    );
  }
  if (!output.success) {
    const reason = new TextDecoder().decode(output.stderr).trim().split("\n")[0];
    throw new CertificateError("internal", `openssl ${args[0]} failed: ${reason}`);
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Makes `ca.pem`/`ca.key` in `dir` unless both exist (then they are reused, so hosts can
 * be added later); returns their paths and whether they were made now.
 */
export async function ensureCa(dir: string): Promise<{ cert: string; key: string; made: boolean }> {
  const cert = join(dir, "ca.pem");
  const key = join(dir, "ca.key");
  if (await exists(cert) && await exists(key)) return { cert, key, made: false };
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "3650",
    "-subj",
    "/CN=denovisor migration CA",
  ], dir);
  await Deno.chmod(key, 0o600);
  return { cert, key, made: true };
}

/** Makes `<name>.pem` and `<name>.key` (0600) in `dir`, signed by `ca`; returns the paths. */
export async function makeHostCert(
  dir: string,
  host: CertHost,
  ca: { cert: string; key: string },
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${host.name}.key`);
  const cert = join(dir, `${host.name}.pem`);
  const csr = join(dir, `${host.name}.csr`);
  const ext = join(dir, `${host.name}.ext`);
  const names = [...new Set([host.name, ...host.addresses])];
  const san = names.map((n) => (isIP(n) === 0 ? `DNS:${n}` : `IP:${n}`)).join(",");
  await Deno.writeTextFile(
    ext,
    `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  try {
    await openssl([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      csr,
      "-subj",
      `/CN=${host.name}`,
    ], dir);
    await Deno.chmod(key, 0o600);
    await openssl([
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      "-CAcreateserial",
      "-out",
      cert,
      "-days",
      "825",
      "-extfile",
      ext,
    ], dir);
  } finally {
    await Deno.remove(csr).catch(() => {});
    await Deno.remove(ext).catch(() => {});
  }
  return { cert, key };
}
