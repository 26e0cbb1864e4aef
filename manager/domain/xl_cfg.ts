/**
 * Reads a Xen `xl.cfg` file into a domain definition, for the keys that map (the table is
 * in docs/domain.md): name, uuid, memory, maxmem, vcpus, maxvcpus, kernel, ramdisk,
 * cmdline/root/extra, disk, vif, on_poweroff/on_reboot/on_crash, type/builder.
 *
 * Keys Denovisor cannot honour (devices it does not have, bootloaders, hotplug scripts)
 * are refused, all listed in one message: silently dropping `pci = [...]` or
 * `bootloader = "pygrub"` would start a different machine than the file describes. Keys
 * that only tune Xen itself or its display (vnc, sdl, acpi, cpu_weight, ...) are ignored
 * with a warning, since the guest runs the same without them.
 *
 * @module
 */

import { resolve } from "node:path";
import type {
  DiskDefinition,
  DomainDefinition,
  LifecycleAction,
  NicDefinition,
} from "../api_types.ts";
import { parseXlDisk, parseXlVif } from "./xl_cfg_devices.ts";
import { readXlSettings, type XlAtom, XlCfgError, type XlSetting } from "./xl_cfg_syntax.ts";

export { XlCfgError } from "./xl_cfg_syntax.ts";

/** Options of `parseXlCfg`. */
export interface XlCfgOptions {
  /** Relative kernel, ramdisk and disk paths are resolved against it (the file's directory). */
  baseDir: string;
  /** Receives one message per ignored key or questionable value. */
  onWarning?: (message: string) => void;
}

/** Keys that only tune Xen, its device model or its display: ignored with a warning. */
const IGNORED_KEYS = new Set([
  "acpi",
  "acpi_s3",
  "acpi_s4",
  "apic",
  "boot",
  "cap",
  "claim_mode",
  "cpu_weight",
  "cpus",
  "cpus_soft",
  "device_model_version",
  "device_model_override",
  "driver_domain",
  "e820_host",
  "hap",
  "hpet",
  "keymap",
  "localtime",
  "max_event_channels",
  "max_grant_frames",
  "max_maptrack_frames",
  "nestedhvm",
  "nomigrate",
  "on_soft_reset",
  "on_watchdog",
  "opengl",
  "pae",
  "pool",
  "rtc_timeoffset",
  "sdl",
  "seclabel",
  "serial",
  "shadow_memory",
  "stdvga",
  "timer_mode",
  "tsc_mode",
  "usb",
  "usbdevice",
  "vga",
  "videoram",
  "viridian",
  "vnc",
  "vncconsole",
  "vncdisplay",
  "vnclisten",
  "vncpasswd",
  "vncunused",
  "vpt_align",
  "xen_platform_pci",
]);

const MAPPED_KEYS = new Set([
  "name",
  "uuid",
  "memory",
  "maxmem",
  "vcpus",
  "maxvcpus",
  "kernel",
  "ramdisk",
  "cmdline",
  "root",
  "extra",
  "disk",
  "vif",
  "on_poweroff",
  "on_reboot",
  "on_crash",
  "type",
  "builder",
]);

const ACTIONS: readonly LifecycleAction[] = ["destroy", "restart", "preserve", "rename-restart"];

/** Whether `text` is an xl.cfg file rather than a JSON definition (which starts with '{'). */
export function looksLikeXlCfg(text: string): boolean {
  const body = text.replace(/^(\s|#[^\n]*)*/, "");
  return !body.startsWith("{") && /^[A-Za-z_][A-Za-z0-9_]*\s*\+?=/.test(body);
}

/** The settings of one file, looked up by key. */
class Settings {
  readonly #byKey: Map<string, XlSetting>;

  constructor(settings: XlSetting[]) {
    this.#byKey = new Map(settings.map((setting) => [setting.key, setting]));
  }

  get(key: string): XlSetting | undefined {
    return this.#byKey.get(key);
  }

  string(key: string): string | undefined {
    const setting = this.get(key);
    if (setting === undefined) return undefined;
    if (Array.isArray(setting.value)) {
      throw new XlCfgError(setting.line, `${key}: expected a string, not a list`);
    }
    return setting.value.text;
  }

  number(key: string): number | undefined {
    const text = this.string(key);
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text)) {
      throw new XlCfgError(this.get(key)!.line, `${key}: expected a whole number, got '${text}'`);
    }
    return Number(text);
  }

  list(key: string): XlAtom[] {
    const setting = this.get(key);
    if (setting === undefined) return [];
    if (!Array.isArray(setting.value)) {
      throw new XlCfgError(setting.line, `${key}: expected a list such as [ '...' ]`);
    }
    return setting.value;
  }
}

/**
 * Parses an xl.cfg file into a definition (not yet validated: pass it to
 * `validateDefinition`). Throws `XlCfgError` (with `.line`) for syntax errors, keys that
 * cannot be honoured and values that cannot be mapped.
 */
export function parseXlCfg(text: string, options: XlCfgOptions): DomainDefinition {
  const warn = options.onWarning ?? (() => {});
  const all = readXlSettings(text);
  const refused = all.filter((s) => !MAPPED_KEYS.has(s.key) && !IGNORED_KEYS.has(s.key));
  if (refused.length > 0) {
    throw new XlCfgError(
      refused[0].line,
      `Denovisor cannot honour ${refused.map((s) => `${s.key} (line ${s.line})`).join(", ")}; ` +
        "remove them (docs/domain.md lists the xl.cfg keys that map)",
    );
  }
  for (const setting of all.filter((s) => IGNORED_KEYS.has(s.key))) {
    warn(`xl.cfg line ${setting.line}: ${setting.key} tunes Xen itself and is ignored`);
  }
  const settings = new Settings(all);
  const definition: Record<string, unknown> = {};
  const name = settings.string("name");
  if (name !== undefined) definition.name = name;
  const uuid = settings.string("uuid");
  if (uuid !== undefined) definition.uuid = uuid;
  const memory = settings.number("memory");
  if (memory !== undefined) definition.memory = memory;
  const vcpus = settings.number("vcpus");
  if (vcpus !== undefined) definition.vcpus = vcpus;
  refuseGrowth(settings, "maxmem", "memory", memory, "the balloon can only shrink a domain");
  refuseGrowth(settings, "maxvcpus", "vcpus", vcpus ?? 1, "vCPUs are not hot-plugged");
  definition.boot = readBoot(settings, options.baseDir, warn);
  const disks: DiskDefinition[] = settings.list("disk").map((atom, index) =>
    parseXlDisk(atom.text, {
      line: settings.get("disk")!.line,
      path: `disk[${index}]`,
      baseDir: options.baseDir,
      warn,
    })
  );
  if (disks.length > 0) definition.disks = disks;
  const nics: NicDefinition[] = settings.list("vif").map((atom, index) =>
    parseXlVif(atom.text, { line: settings.get("vif")!.line, path: `vif[${index}]`, warn })
  );
  if (nics.length > 0) definition.nics = nics;
  for (
    const [key, field] of [
      ["on_poweroff", "onPoweroff"],
      ["on_reboot", "onReboot"],
      ["on_crash", "onCrash"],
    ] as const
  ) {
    const action = settings.string(key);
    if (action === undefined) continue;
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new XlCfgError(
        settings.get(key)!.line,
        `${key}: '${action}' has no Denovisor equivalent; use ${ACTIONS.join(", ")}`,
      );
    }
    definition[field] = action;
  }
  return definition as unknown as DomainDefinition;
}

function refuseGrowth(
  settings: Settings,
  key: string,
  base: string,
  baseValue: number | undefined,
  why: string,
): void {
  const value = settings.number(key);
  if (value === undefined || value === baseValue) return;
  throw new XlCfgError(
    settings.get(key)!.line,
    `${key} = ${value} differs from ${base}${baseValue === undefined ? "" : ` = ${baseValue}`}; ` +
      `Denovisor starts the domain with ${base} (${why}): set ${base} to what it should get and remove ${key}`,
  );
}

function readBoot(
  settings: Settings,
  baseDir: string,
  warn: (message: string) => void,
): DomainDefinition["boot"] {
  const type = settings.string("type") ?? settings.string("builder");
  const typeKey = settings.get("type") ? "type" : "builder";
  const kernel = settings.string("kernel");
  if (type !== undefined && !["pv", "pvh", "hvm", "generic", "linux"].includes(type)) {
    throw new XlCfgError(
      settings.get(typeKey)!.line,
      `${typeKey}: '${type}' is not one of pv, pvh, hvm`,
    );
  }
  if (kernel === undefined) {
    const line = settings.get(typeKey)?.line ?? 1;
    throw new XlCfgError(
      line,
      type === "hvm"
        ? 'type hvm without kernel boots firmware, which Denovisor does not have; add kernel = "/boot/vmlinuz"'
        : 'kernel is not set; Denovisor boots a kernel directly: add kernel = "/boot/vmlinuz"',
    );
  }
  if (type === "hvm") {
    warn(
      `xl.cfg line ${
        settings.get(typeKey)!.line
      }: ${typeKey} hvm: the kernel is booted directly, without firmware`,
    );
  }
  let cmdline = settings.string("cmdline");
  const root = settings.string("root");
  const extra = settings.string("extra");
  if (cmdline !== undefined && (root !== undefined || extra !== undefined)) {
    warn(
      `xl.cfg line ${
        settings.get("cmdline")!.line
      }: cmdline is set, so root and extra are ignored (as xl does)`,
    );
  } else if (root !== undefined || extra !== undefined) {
    // xl builds "root=<root> <extra>".
    cmdline = [root === undefined ? undefined : `root=${root}`, extra]
      .filter((part) => part !== undefined).join(" ");
  }
  if (cmdline !== undefined) warnXenisms(cmdline, warn);
  const boot: DomainDefinition["boot"] = { kernel: resolve(baseDir, kernel) };
  const ramdisk = settings.string("ramdisk");
  if (ramdisk !== undefined) boot.initrd = resolve(baseDir, ramdisk);
  if (cmdline !== undefined) boot.cmdline = cmdline;
  return boot;
}

/** Xen guests name their console and disks differently; a copied cmdline then fails to boot. */
function warnXenisms(cmdline: string, warn: (message: string) => void): void {
  if (/\bconsole=hvc0\b/.test(cmdline)) {
    warn("the command line says console=hvc0 (Xen's console); Denovisor's console is ttyS0");
  }
  const xvd = /\/dev\/xvd([a-z]+)/.exec(cmdline);
  if (xvd) {
    warn(
      `the command line names ${xvd[0]}; here disks are virtio-blk: /dev/vd${
        xvd[1]
      } (in disk order)`,
    );
  }
}
