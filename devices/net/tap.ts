/**
 * Linux tap devices (/dev/net/tun) for virtio-net: created by Denovisor or attached to an
 * existing one, with the virtio-net header (IFF_VNET_HDR) in front of every frame, offloads
 * probed once so virtio-net offers only what the kernel accepts, the link brought up and
 * optionally enslaved to a bridge. See Linux's Documentation/networking/tuntap.rst.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import { closeFd, errno, ioctlBytes, ioctlValue, openFile } from "../../ffi/libc.ts";
import { ioctl, ioctlWithValue } from "../../ffi/fs.ts";
import { O_CLOEXEC, O_NONBLOCK, O_RDWR } from "../../ffi/libc_symbols.ts";
import { SyscallError } from "../../ffi/errno.ts";
import { addStatusFlags } from "../../ffi/file_stat.ts";
import { AF_UNIX, interfaceIndex, SOCK_CLOEXEC, SOCK_DGRAM, socket } from "../../ffi/socket.ts";
import { INTERFACE_NAME_RULE, isInterfaceName } from "../../common/validators.ts";
import { handedTap } from "../../common/handed_descriptors.ts";

const TUNSETIFF = 0x400454can;
const TUNSETPERSIST = 0x400454cbn;
const TUNSETOWNER = 0x400454ccn;
const TUNSETGROUP = 0x400454cen;
const TUNSETOFFLOAD = 0x400454d0n;
const TUNSETVNETHDRSZ = 0x400454d8n;
const SIOCGIFFLAGS = 0x8913n;
const SIOCSIFFLAGS = 0x8914n;
const SIOCBRADDIF = 0x89a2n;

const IFF_UP = 0x1;
const EEXIST = 17;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
/** struct ifreq: char ifr_name[16] + a 24-byte union. */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;

/** The virtio 1.x net header (virtio_net_hdr_v1, with num_buffers) that the tap prepends. */
export const VNET_HEADER_SIZE = 12;

/** Offload flags for TUNSETOFFLOAD: what the kernel may hand us (guest receive side). */
export const TUN_F = {
  CSUM: 0x01,
  TSO4: 0x02,
  TSO6: 0x04,
  TSO_ECN: 0x08,
  UFO: 0x10,
} as const;

/** Offload sets tried in order when probing, richest first (older kernels refuse UFO). */
const OFFLOAD_PROBES = [
  TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6 | TUN_F.TSO_ECN | TUN_F.UFO,
  TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6 | TUN_F.TSO_ECN,
  TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6,
  TUN_F.CSUM,
];

/** How to open a tap. */
export interface TapOptions {
  /** Interface name; "auto" (the default) lets the kernel pick the first free "dv%d". */
  name?: string;
  /** Create the tap (it must not exist) or attach to an existing one (it must exist). */
  create: boolean;
  /** Enslave the tap to this existing bridge. */
  bridge?: string;
  /** Must be true: virtio-net needs the virtio header on every frame. */
  vnetHeader: true;
  /** Keep the tap after close (TUNSETPERSIST); only meaningful with `create`. */
  persist?: boolean;
}

/** A tap could not be opened or configured; the message says what to do. */
export class TapError extends DenovisorError {
  constructor(message: string, options?: ErrorOptions) {
    super("unavailable", message, options);
  }
}

/** An open tap device: a non-blocking fd carrying virtio-net header + Ethernet frame. */
export class Tap {
  readonly #name: string;
  readonly #created: boolean;
  readonly #offloads: number;
  #fd: number;

  private constructor(fd: number, name: string, created: boolean, offloads: number) {
    this.#fd = fd;
    this.#name = name;
    this.#created = created;
    this.#offloads = offloads;
  }

  /** Opens (and if asked creates) a tap, brings it up and attaches it to `bridge`. */
  static open(options: TapOptions): Tap {
    if (options.vnetHeader !== true) {
      throw new TapError("Cannot open a tap without the virtio-net header; pass vnetHeader: true");
    }
    const requested = options.name ?? "auto";
    const handed = handedTap(requested);
    if (handed !== undefined) return Tap.#attachHanded(handed, requested);
    const pattern = requested === "auto" ? "dv%d" : requested;
    if (requested !== "auto") validateName(requested);
    if (options.bridge !== undefined) requireBridge(options.bridge);
    const exists = requested !== "auto" && interfaceExists(requested);
    if (options.create && exists) {
      throw new TapError(
        `Cannot create tap ${requested}: an interface with that name exists; pick another name or attach with create: false`,
      );
    }
    if (!options.create && !exists) {
      throw new TapError(
        `Tap ${requested} does not exist; create it with "ip tuntap add dev ${requested} mode tap" or let Denovisor create it`,
      );
    }
    const fd = openTunDevice();
    try {
      const name = setInterface(fd, pattern);
      const created = options.create;
      const vnetSize = new Int32Array([VNET_HEADER_SIZE]);
      ioctlBytes(fd, TUNSETVNETHDRSZ, new Uint8Array(vnetSize.buffer), "ioctl(TUNSETVNETHDRSZ)");
      const offloads = probeOffloads(fd);
      if (created && options.persist) ioctlValue(fd, TUNSETPERSIST, 1, "ioctl(TUNSETPERSIST)");
      const tap = new Tap(fd, name, created, offloads);
      setLinkUp(name);
      if (options.bridge !== undefined) attachToBridge(name, options.bridge);
      return tap;
    } catch (error) {
      closeFd(fd);
      if (error instanceof TapError) throw error;
      throw new TapError(`Cannot set up tap ${pattern}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * A sandboxed VMM's tap: `fd` is a /dev/net/tun its launcher opened in the host's
   * network namespace (so TUNSETIFF finds `name` there, not in the VMM's empty one); the
   * daemon created the tap persistent, owned by the VMM's user, up and on its bridge.
   * A reboot attaches again through another duplicate of the same file: EEXIST then
   * means it is attached already. The launcher's shell opened it blocking; the device
   * reads until EAGAIN, so a blocking descriptor hung the VMM's event loop at the first
   * frame from the host (seen on KVM: the guest's frames never left).
   */
  static #attachHanded(fd: number, name: string): Tap {
    try {
      validateName(name);
      addStatusFlags(fd, O_NONBLOCK);
      const request = ifreq(name);
      new DataView(request.buffer).setUint16(IFNAMSIZ, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, true);
      if (ioctl(fd, TUNSETIFF, request) < 0 && errno() !== EEXIST) {
        const code = errno();
        const hint = code === 1
          ? "permission denied (the tap is not owned by the VMM's user)"
          : new SyscallError("ioctl(TUNSETIFF)", code).message;
        throw new TapError(`Cannot attach handed tap ${name}: ${hint}`);
      }
      const vnetSize = new Int32Array([VNET_HEADER_SIZE]);
      ioctlBytes(fd, TUNSETVNETHDRSZ, new Uint8Array(vnetSize.buffer), "ioctl(TUNSETVNETHDRSZ)");
      return new Tap(fd, name, false, probeOffloads(fd));
    } catch (error) {
      closeFd(fd);
      if (error instanceof TapError) throw error;
      throw new TapError(`Cannot set up tap ${name}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * Gives the tap to `uid` and `gid` (TUNSETOWNER, TUNSETGROUP), so that a process with
   * those ids and no capabilities may attach to it once it is persistent.
   */
  setOwner(uid: number, gid: number): void {
    ioctlValue(this.#fd, TUNSETOWNER, uid, "ioctl(TUNSETOWNER)");
    ioctlValue(this.#fd, TUNSETGROUP, gid, "ioctl(TUNSETGROUP)");
  }

  /** Keeps the tap after the last close (TUNSETPERSIST), or lets it go with it. */
  setPersistent(persistent: boolean): void {
    ioctlValue(this.#fd, TUNSETPERSIST, persistent ? 1 : 0, "ioctl(TUNSETPERSIST)");
  }

  /** The interface name (as the kernel chose it for "auto"). */
  get name(): string {
    return this.#name;
  }

  /** The tap fd (non-blocking), or -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** Whether Denovisor created the tap (it then goes away on close unless persistent). */
  get created(): boolean {
    return this.#created;
  }

  /** The TUN_F offload flags the kernel accepted when probed. */
  get supportedOffloads(): number {
    return this.#offloads;
  }

  /**
   * Sets the offloads the kernel may use on frames it hands us (TUN_F flags); only flags
   * in `supportedOffloads` are allowed.
   */
  setOffloads(flags: number): void {
    if ((flags & ~this.#offloads) !== 0) {
      throw new TapError(
        `Tap ${this.#name} does not support offload flags 0x${
          flags.toString(16)
        }; use a subset of 0x${this.#offloads.toString(16)}`,
      );
    }
    ioctlValue(this.#fd, TUNSETOFFLOAD, flags, "ioctl(TUNSETOFFLOAD)");
  }

  /** Closes the fd; a tap Denovisor created without `persist` disappears. Idempotent. */
  close(): void {
    closeFd(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function interfaceExists(name: string): boolean {
  return interfaceIndex(name) !== 0;
}

function validateName(name: string): void {
  if (!isInterfaceName(name)) {
    throw new TapError(`Invalid interface name "${name}": use ${INTERFACE_NAME_RULE}`);
  }
}

function requireBridge(bridge: string): void {
  validateName(bridge);
  let isBridge = false;
  try {
    isBridge = Deno.statSync(`/sys/class/net/${bridge}/bridge`).isDirectory;
  } catch {
    isBridge = false;
  }
  if (!isBridge) {
    throw new TapError(
      `Bridge ${bridge} does not exist; create it with "ip link add ${bridge} type bridge" or drop the bridge option`,
    );
  }
}

function openTunDevice(): number {
  try {
    return openFile("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  } catch (error) {
    const code = error instanceof SyscallError ? error.errno : 0;
    const hint = code === 2 || code === 19
      ? "/dev/net/tun missing; modprobe tun"
      : code === 1 || code === 13
      ? "permission denied; run as root or grant CAP_NET_ADMIN"
      : (error as Error).message;
    throw new TapError(`Cannot create tap: ${hint}`, { cause: error });
  }
}

function ifreq(name: string): Uint8Array<ArrayBuffer> {
  const request = new Uint8Array(IFREQ_SIZE);
  request.set(new TextEncoder().encode(name));
  return request;
}

function nameOf(request: Uint8Array): string {
  const end = request.indexOf(0);
  return new TextDecoder().decode(request.subarray(0, end < 0 ? IFNAMSIZ : end));
}

/** TUNSETIFF: creates or attaches; returns the final name (the kernel expands "%d"). */
function setInterface(fd: number, pattern: string): string {
  const request = ifreq(pattern);
  new DataView(request.buffer).setUint16(IFNAMSIZ, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, true);
  if (ioctl(fd, TUNSETIFF, request) < 0) {
    const code = errno();
    const hint = code === 16
      ? `${pattern} is busy (another process holds it, or it is not a tap)`
      : code === 22
      ? `${pattern} exists but is not a tap with compatible flags`
      : code === 1
      ? "permission denied; run as root or grant CAP_NET_ADMIN"
      : new SyscallError("ioctl(TUNSETIFF)", code).message;
    throw new TapError(`Cannot open tap ${pattern}: ${hint}`);
  }
  return nameOf(request);
}

function probeOffloads(fd: number): number {
  for (const flags of OFFLOAD_PROBES) {
    if (ioctlWithValue(fd, TUNSETOFFLOAD, flags) === 0) {
      // Nothing is offloaded until the driver negotiates it.
      ioctlValue(fd, TUNSETOFFLOAD, 0, "ioctl(TUNSETOFFLOAD)");
      return flags;
    }
  }
  return 0;
}

/**
 * Runs `body` with a throwaway socket, the handle interface ioctls need. The kernel
 * serves them for any family (as glibc's if_nametoindex does); AF_UNIX keeps a VMM under
 * its seccomp filter, which refuses network sockets, able to rebuild its taps on reboot.
 */
function withControlSocket<T>(body: (socket: number) => T): T {
  const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC);
  if (fd < 0) throw new SyscallError("socket(AF_UNIX)", errno());
  try {
    return body(fd);
  } finally {
    closeFd(fd);
  }
}

function setLinkUp(name: string): void {
  withControlSocket((socket) => {
    const request = ifreq(name);
    ioctlBytes(socket, SIOCGIFFLAGS, request, `ioctl(SIOCGIFFLAGS, ${name})`);
    const view = new DataView(request.buffer);
    view.setUint16(IFNAMSIZ, view.getUint16(IFNAMSIZ, true) | IFF_UP, true);
    ioctlBytes(socket, SIOCSIFFLAGS, request, `ioctl(SIOCSIFFLAGS, ${name})`);
  });
}

function attachToBridge(name: string, bridge: string): void {
  const index = interfaceIndex(name);
  withControlSocket((socket) => {
    const request = ifreq(bridge);
    new DataView(request.buffer).setInt32(IFNAMSIZ, index, true);
    if (ioctl(socket, SIOCBRADDIF, request) < 0) {
      const error = new SyscallError(`ioctl(SIOCBRADDIF, ${bridge})`, errno());
      throw new TapError(`Cannot attach tap ${name} to bridge ${bridge}: ${error.message}`);
    }
  });
}
