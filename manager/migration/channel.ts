/**
 * The daemon-to-daemon migration channel: TCP with mutual TLS (node:tls, which enforces
 * client certificates; Deno.listenTls does not, see HOST_FACTS.md), or, for tests on one
 * machine, plain TCP named insecure and confined to loopback addresses. A peer without a
 * certificate signed by the configured CA fails the handshake, so no frame is read from
 * it. Each side wraps the socket in a `FrameReader`/`FrameWriter`.
 *
 * @module
 */

import * as net from "node:net";
import * as tls from "node:tls";
import { DenovisorError } from "../../common/errors.ts";
import { FrameReader, FrameWriter } from "../../vmm/migration/frames.ts";

/** PEM files of this host: its certificate and key, and the farm's CA. */
export interface MigrationTlsFiles {
  cert: string;
  key: string;
  ca: string;
}

/** How to secure a channel: mutual TLS, or the explicit insecure mode (loopback only). */
export type MigrationSecurity = { tls: MigrationTlsFiles } | { insecure: true };

/** A refused or failed channel (bad credentials, unreachable peer, forbidden address). */
export class MigrationChannelError extends DenovisorError {}

/** An open channel to a peer. */
export interface MigrationChannel {
  readonly reader: FrameReader;
  readonly writer: FrameWriter;
  /** The peer's address and, with TLS, its certificate subject (for logs). */
  readonly peer: string;
  /** Ends the connection (idempotent). */
  close(): void;
}

/** Whether `host` is a loopback address (127.0.0.0/8, ::1) or localhost. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1" || host === "[::1]") return true;
  return net.isIPv4(host) && host.startsWith("127.");
}

/** Reads the PEM files once, failing with the file named. */
export async function loadTlsFiles(files: MigrationTlsFiles): Promise<tls.SecureContextOptions> {
  const read = async (path: string, what: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      throw new MigrationChannelError(
        "unavailable",
        `Cannot read the migration ${what} ${path}: ${(error as Error).message}`,
      );
    }
  };
  return {
    cert: await read(files.cert, "certificate (--migration-cert)"),
    key: await read(files.key, "key (--migration-key)"),
    ca: await read(files.ca, "CA certificate (--migration-ca)"),
  };
}

function checkInsecure(security: MigrationSecurity, host: string): void {
  if ("insecure" in security && !isLoopback(host)) {
    throw new MigrationChannelError(
      "forbidden",
      `Insecure migration is only allowed on loopback addresses, not ${host}; ` +
        `give --migration-cert, --migration-key and --migration-ca`,
    );
  }
}

/** Idle limit: a peer silent this long (no frame, no ack) is cut. */
export const CHANNEL_IDLE_MS = 60_000;

function wrap(socket: net.Socket, peer: string): MigrationChannel {
  socket.setNoDelay(true);
  socket.setTimeout(CHANNEL_IDLE_MS, () => socket.destroy(new Error("migration peer idle")));
  const write = (bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      if (socket.destroyed || !socket.writable) {
        reject(new MigrationChannelError("unavailable", `Migration link to ${peer} is closed`));
        return;
      }
      socket.write(bytes, (error) => error ? reject(error) : resolve());
    });
  return {
    reader: new FrameReader(socket as AsyncIterable<Uint8Array>),
    writer: new FrameWriter(write),
    peer,
    close: () => {
      socket.destroy();
    },
  };
}

/** A listening migration endpoint. */
export interface MigrationListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listens on `host:port`; `onChannel` gets each authenticated peer. Handshake failures
 * (no certificate, another CA) are reported to `onRefused` and never reach `onChannel`.
 */
export async function listenMigration(
  options: { host: string; port: number; security: MigrationSecurity },
  onChannel: (channel: MigrationChannel) => void,
  onRefused: (reason: string) => void = () => {},
): Promise<MigrationListener> {
  checkInsecure(options.security, options.host);
  let server: net.Server;
  if ("tls" in options.security) {
    const context = await loadTlsFiles(options.security.tls);
    server = tls.createServer({
      ...context,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
      handshakeTimeout: 10_000,
    }, (socket) => {
      // rejectUnauthorized already ended unauthorized peers; checked again on purpose.
      if (!socket.authorized) {
        onRefused(`peer ${socket.remoteAddress}: ${socket.authorizationError}`);
        socket.destroy();
        return;
      }
      const subject = socket.getPeerCertificate()?.subject?.CN ?? "?";
      onChannel(wrap(socket, `${socket.remoteAddress}:${socket.remotePort} (CN=${subject})`));
    });
    server.on("tlsClientError", (error: Error, socket: net.Socket) => {
      onRefused(`peer ${socket.remoteAddress}: ${error.message}`);
      socket.destroy();
    });
  } else {
    server = net.createServer((socket) => {
      onChannel(wrap(socket, `${socket.remoteAddress}:${socket.remotePort} (insecure)`));
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(
        new MigrationChannelError(
          "unavailable",
          `Cannot listen for migrations on ${options.host}:${options.port}: ${error.message}`,
        ),
      ));
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Connects to a destination's migration listener. */
export async function connectMigration(
  options: { host: string; port: number; security: MigrationSecurity; timeoutMs?: number },
): Promise<MigrationChannel> {
  checkInsecure(options.security, options.host);
  const { host, port } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const context = "tls" in options.security ? await loadTlsFiles(options.security.tls) : null;
  return await new Promise<MigrationChannel>((resolve, reject) => {
    const fail = (error: Error) => {
      socket.destroy();
      reject(
        new MigrationChannelError(
          "unavailable",
          `Cannot open a migration channel to ${host}:${port}: ${error.message}`,
        ),
      );
    };
    const ready = () => {
      socket.off("error", fail);
      clearTimeout(timer);
      resolve(wrap(socket, `${host}:${port}`));
    };
    const socket: net.Socket = context
      ? tls.connect({ host, port, ...context, minVersion: "TLSv1.3" }, ready)
      : net.connect({ host, port }, ready);
    socket.once("error", fail);
    const timer = setTimeout(() => fail(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
  });
}
