/**
 * A real single-member etcd for the farm tests: on loopback, on free ports, with a
 * temporary data directory, stopped and removed at the end. Debian's `etcd-server`
 * provides it (scripts/ensure_packages.sh installs it, so CI always has it); where it is
 * missing the farm tests are skipped with a loud warning instead of failing.
 *
 * @module
 */

const ETCD = ["/usr/bin/etcd", "/usr/local/bin/etcd"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

/** Whether an etcd binary is installed. */
export const etcdAvailable = ETCD !== undefined;

if (!etcdAvailable) {
  console.warn(
    "\n!!! etcd is not installed: the farm tests are SKIPPED. Install it with " +
      "'apt-get install etcd-server' (scripts/ensure_packages.sh does) !!!\n",
  );
}

/** `Deno.test` that is skipped (loudly, once per file) when etcd is missing. */
export function etcdTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !etcdAvailable, fn, sanitizeResources: false, sanitizeOps: false });
}

/** A free TCP port on loopback (closed again; etcd binds it right after). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** One running etcd member. */
export class TestEtcd {
  readonly url: string;
  readonly dir: string;
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<string>;

  private constructor(url: string, dir: string, child: Deno.ChildProcess) {
    this.url = url;
    this.dir = dir;
    this.#child = child;
    this.#output = new Response(child.stderr).text();
    child.stdout.cancel();
  }

  /**
   * Starts etcd and waits until it answers. With `tls`, it serves https with a
   * certificate from a fresh CA and requires client certificates (see `tlsFiles`).
   */
  static async start(options: { tls?: boolean; hostname?: string } = {}): Promise<TestEtcd> {
    if (ETCD === undefined) throw new Error("etcd is not installed; apt-get install etcd-server");
    const dir = await Deno.makeTempDir({ prefix: "denovisor-etcd-test-" });
    const scheme = options.tls ? "https" : "http";
    // Listening on `hostname` too (a bridge's address for the network-namespace tests).
    const hostname = options.hostname ?? "127.0.0.1";
    const client = `${scheme}://${hostname}:${freePort()}`;
    const peer = `http://127.0.0.1:${freePort()}`;
    const tls = options.tls ? await makeCertificates(dir) : undefined;
    const child = new Deno.Command(ETCD, {
      args: [
        "--name=test",
        `--data-dir=${dir}/data`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=test=${peer}`,
        "--log-level=warn",
        ...(tls
          ? [
            `--cert-file=${tls.serverCert}`,
            `--key-file=${tls.serverKey}`,
            `--trusted-ca-file=${tls.ca}`,
            "--client-cert-auth",
          ]
          : []),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const etcd = new TestEtcd(client, dir, child);
    const http = tls
      ? Deno.createHttpClient({
        caCerts: [await Deno.readTextFile(tls.ca)],
        cert: await Deno.readTextFile(tls.clientCert),
        key: await Deno.readTextFile(tls.clientKey),
      })
      : undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        const response = await fetch(`${client}/v3/maintenance/status`, {
          method: "POST",
          body: "{}",
          client: http,
        });
        await response.body?.cancel();
        if (response.ok) {
          http?.close();
          return etcd;
        }
      } catch {
        // Not listening yet.
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    http?.close();
    await etcd.stop();
    throw new Error(`etcd did not answer within 30 s:\n${await etcd.#output}`);
  }

  /** The certificate files of a `tls` etcd (made by `start`). */
  get tlsFiles(): CertificateFiles {
    return certificateFiles(this.dir);
  }

  /** Stops etcd and removes its data. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#child.status;
    await this.#output.catch(() => "");
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** The PEM files of a test CA, etcd's server certificate and a client certificate. */
export interface CertificateFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function certificateFiles(dir: string): CertificateFiles {
  return {
    ca: `${dir}/ca.pem`,
    serverCert: `${dir}/server.pem`,
    serverKey: `${dir}/server-key.pem`,
    clientCert: `${dir}/client.pem`,
    clientKey: `${dir}/client-key.pem`,
  };
}

/** A CA, and server (127.0.0.1) and client certificates it signed, made with openssl. */
async function makeCertificates(dir: string): Promise<CertificateFiles> {
  const files = certificateFiles(dir);
  const openssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  await openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${dir}/ca-key.pem`,
    "-out",
    files.ca,
    "-days",
    "2",
    "-subj",
    "/CN=test-ca",
  );
  for (
    const [name, cert, key, ext] of [
      [
        "server",
        files.serverCert,
        files.serverKey,
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth",
      ],
      ["client", files.clientCert, files.clientKey, "extendedKeyUsage=clientAuth"],
    ]
  ) {
    await openssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      `${dir}/${name}.csr`,
      "-subj",
      `/CN=${name}`,
    );
    await Deno.writeTextFile(`${dir}/${name}.ext`, ext + "\n");
    await openssl(
      "x509",
      "-req",
      "-in",
      `${dir}/${name}.csr`,
      "-CA",
      files.ca,
      "-CAkey",
      `${dir}/ca-key.pem`,
      "-CAcreateserial",
      "-out",
      cert,
      "-days",
      "2",
      "-extfile",
      `${dir}/${name}.ext`,
    );
  }
  return files;
}

function spawnMember(args: string[]): Deno.ChildProcess {
  return new Deno.Command(ETCD!, { args, stdin: "null", stdout: "null", stderr: "null" }).spawn();
}

/** A 3-member (or `size`-member) etcd cluster on loopback, for the member-loss tests. */
export class TestEtcdCluster {
  readonly urls: string[];
  readonly #dir: string;
  readonly #children: (Deno.ChildProcess | undefined)[];
  /** Each member's etcd arguments, to start it again after a kill. */
  readonly #args: string[][];

  private constructor(
    urls: string[],
    dir: string,
    children: Deno.ChildProcess[],
    args: string[][],
  ) {
    this.urls = urls;
    this.#dir = dir;
    this.#children = children;
    this.#args = args;
  }

  /** Starts the members together (they wait for each other) and waits until all answer. */
  static async start(size = 3): Promise<TestEtcdCluster> {
    if (ETCD === undefined) throw new Error("etcd is not installed; apt-get install etcd-server");
    const dir = await Deno.makeTempDir({ prefix: "denovisor-etcd-cluster-" });
    const members = Array.from({ length: size }, (_, i) => ({
      name: `m${i}`,
      client: `http://127.0.0.1:${freePort()}`,
      peer: `http://127.0.0.1:${freePort()}`,
    }));
    const initial = members.map((m) => `${m.name}=${m.peer}`).join(",");
    const args = members.map((m) => [
      `--name=${m.name}`,
      `--data-dir=${dir}/${m.name}`,
      `--listen-client-urls=${m.client}`,
      `--advertise-client-urls=${m.client}`,
      `--listen-peer-urls=${m.peer}`,
      `--initial-advertise-peer-urls=${m.peer}`,
      `--initial-cluster=${initial}`,
      "--initial-cluster-state=new",
      "--initial-cluster-token=denovisor-test",
      "--log-level=error",
    ]);
    const children = args.map(spawnMember);
    const cluster = new TestEtcdCluster(members.map((m) => m.client), dir, children, args);
    const deadline = Date.now() + 60_000;
    for (const url of cluster.urls) {
      while (true) {
        try {
          const response = await fetch(`${url}/v3/kv/range`, {
            method: "POST",
            body: JSON.stringify({ key: btoa("probe") }),
          });
          await response.body?.cancel();
          if (response.ok) break;
        } catch {
          // Not up yet.
        }
        if (Date.now() > deadline) {
          await cluster.stop();
          throw new Error(`etcd member ${url} did not serve within 60 s`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    return cluster;
  }

  /** Kills member `index` (SIGKILL), as a crashed etcd host. */
  async kill(index: number): Promise<void> {
    const child = this.#children[index];
    if (child === undefined) return;
    this.#children[index] = undefined;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
  }

  /** Starts member `index` again on its data (after `kill`); it rejoins the cluster. */
  restart(index: number): void {
    if (this.#children[index] !== undefined) return;
    this.#children[index] = spawnMember(this.#args[index]);
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.#children.length; i++) await this.kill(i);
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}
