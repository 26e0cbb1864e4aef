/**
 * Test helper: a CA and host certificates made with openssl, as docs describe for a farm
 * (see manager/migration/README.md). Used by the channel tests only.
 *
 * @module
 */

import { join } from "node:path";

async function openssl(args: string[], cwd: string): Promise<void> {
  const output = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
}

/** Makes `<name>-ca.pem`/`<name>-ca.key` in `dir`; returns the CA's paths. */
export async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}-ca.pem`);
  const key = join(dir, `${name}-ca.key`);
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
    "2",
    "-subj",
    `/CN=${name} migration CA`,
  ], dir);
  return { cert, key };
}

/** Makes a host certificate for `cn` (SAN IP 127.0.0.1 and DNS localhost) signed by `ca`. */
export async function makeHostCert(
  dir: string,
  cn: string,
  ca: { cert: string; key: string },
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${cn}.key`);
  const csr = join(dir, `${cn}.csr`);
  const cert = join(dir, `${cn}.pem`);
  const ext = join(dir, `${cn}.ext`);
  await Deno.writeTextFile(
    ext,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
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
    `/CN=${cn}`,
  ], dir);
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
    "2",
    "-extfile",
    ext,
  ], dir);
  return { cert, key };
}
