/**
 * The shared enumerations: each list once, as a readonly array (for validation, the
 * OpenAPI description and help texts) with its type derived from it. The API types,
 * domain definitions, the VMM config, the CLI and storage all take them from here.
 *
 * @module
 */

/** How a virtio device sits on the machine: a PCI function or a virtio-mmio window. */
export const TRANSPORTS = ["pci", "mmio"] as const;
/** A virtio transport. */
export type Transport = typeof TRANSPORTS[number];

/** Disk image formats Denovisor reads and writes. */
export const IMAGE_FORMATS = ["raw", "qcow2"] as const;
/** A disk image format. */
export type ImageFormat = typeof IMAGE_FORMATS[number];

/** xl's actions when the guest powers off, reboots or crashes (xl.cfg(5)). */
export const LIFECYCLE_ACTIONS = ["destroy", "restart", "preserve", "rename-restart"] as const;
/** What happens when a guest powers off, reboots or crashes. */
export type LifecycleAction = typeof LIFECYCLE_ACTIONS[number];

/** What a client can ask of a domain (POST /v1/domains/{name}/{action}). */
export const DOMAIN_ACTIONS = [
  "start",
  "shutdown",
  "destroy",
  "reboot",
  "pause",
  "resume",
] as const;
/** A domain action of the API and the CLI verbs of the same names. */
export type DomainAction = typeof DOMAIN_ACTIONS[number];

/**
 * Where a domain is. "crashed" is a preserved crash (on_crash=preserve); "shutoff" a
 * defined domain that is not running.
 */
export const DOMAIN_STATES = [
  "shutoff",
  "starting",
  "running",
  "paused",
  "shutting-down",
  "crashed",
] as const;
/** A domain's state. */
export type DomainState = typeof DOMAIN_STATES[number];

/** A domain's console: the 16550A on ttyS0, or a virtio console (hvc0) beside it. */
export const CONSOLE_KINDS = ["serial", "virtio"] as const;
/** A console kind. */
export type ConsoleKind = typeof CONSOLE_KINDS[number];

/** Whether `value` is one of `choices` (narrowing an untrusted string). */
export function isOneOf<T extends string>(value: unknown, choices: readonly T[]): value is T {
  return typeof value === "string" && (choices as readonly string[]).includes(value);
}
