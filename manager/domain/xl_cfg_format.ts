/**
 * Writes a domain definition as an xl.cfg file, for users going back to Xen or comparing:
 * `parseXlCfg(formatXlCfg(d))` validates to `d` for everything xl.cfg can express. What
 * it cannot (pool volumes, the demo guest, rng, balloon, transports, disk limits) is
 * written as `# not in xl.cfg:` comments, so nothing is dropped without a word.
 *
 * @module
 */

import type { DomainDefinition } from "../api_types.ts";
import { definitionMemoryBytes } from "./definition.ts";

function quote(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function listOf(items: string[]): string {
  return `[ ${
    items.map((item) => `'${item.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`).join(", ")
  } ]`;
}

/** An xl.cfg text for a validated definition. */
export function formatXlCfg(definition: DomainDefinition): string {
  const lines: string[] = [`# Written by denovisor from domain '${definition.name}'`];
  const missing: string[] = [];
  lines.push(`name = ${quote(definition.name)}`);
  if (definition.uuid) lines.push(`uuid = ${quote(definition.uuid)}`);
  lines.push(`memory = ${definitionMemoryBytes(definition) / (1024 * 1024)}`);
  lines.push(`vcpus = ${definition.vcpus ?? 1}`);
  if ("demo" in definition.boot) {
    missing.push("boot from the embedded demo guest");
  } else if ("firmware" in definition.boot) {
    // xl's HVM guests: SeaBIOS is bios = "seabios"; boot = "cd" is disk, then CD-ROM.
    lines.push(`type = "hvm"`);
    if (definition.boot.firmware === "seabios") lines.push(`bios = "seabios"`);
    else missing.push(`boot.firmware = ${definition.boot.firmware}`);
    const order = definition.boot.order?.map((kind) => (kind === "disk" ? "c" : "d")).join("");
    if (order) lines.push(`boot = ${quote(order)}`);
    for (const [index, cdrom] of (definition.cdroms ?? []).entries()) {
      missing.push(`cdroms[${index}] = ${cdrom}`);
    }
  } else {
    lines.push(`kernel = ${quote(definition.boot.kernel)}`);
    if (definition.boot.initrd) lines.push(`ramdisk = ${quote(definition.boot.initrd)}`);
    if (definition.boot.cmdline !== undefined) {
      lines.push(`cmdline = ${quote(definition.boot.cmdline)}`);
    }
  }
  const disks: string[] = [];
  for (const [index, disk] of (definition.disks ?? []).entries()) {
    if (disk.path === undefined) {
      missing.push(`disks[${index}]: volume '${disk.volume}' of pool '${disk.pool}'`);
      continue;
    }
    const items = disk.format ? [`format=${disk.format}`] : [];
    items.push(`access=${disk.readOnly ? "ro" : "rw"}`, `target=${disk.path}`);
    disks.push(items.join(", "));
    for (const key of ["serial", "rateLimit"] as const) {
      if (disk[key] !== undefined) missing.push(`disks[${index}].${key} = ${disk[key]}`);
    }
    if (disk.transport === "mmio") missing.push(`disks[${index}].transport = mmio`);
    if (disk.bus === "sata") missing.push(`disks[${index}].bus = sata`);
  }
  if (disks.length > 0) lines.push(`disk = ${listOf(disks)}`);
  const vifs: string[] = [];
  for (const [index, nic] of (definition.nics ?? []).entries()) {
    const items: string[] = [];
    if (nic.mac) items.push(`mac=${nic.mac}`);
    if (nic.bridge) items.push(`bridge=${nic.bridge}`);
    if (nic.tap && nic.tap !== "auto") items.push(`vifname=${nic.tap}`);
    const bandwidth = /^bw=(\d+)$/.exec(nic.rateLimit ?? "");
    if (bandwidth) items.push(`rate=${bandwidth[1]}B/s`);
    else if (nic.rateLimit) missing.push(`nics[${index}].rateLimit = ${nic.rateLimit}`);
    if (nic.transport === "mmio") missing.push(`nics[${index}].transport = mmio`);
    vifs.push(items.join(", "));
  }
  if (vifs.length > 0) lines.push(`vif = ${listOf(vifs)}`);
  if (definition.onPoweroff) lines.push(`on_poweroff = ${quote(definition.onPoweroff)}`);
  if (definition.onReboot) lines.push(`on_reboot = ${quote(definition.onReboot)}`);
  if (definition.onCrash) lines.push(`on_crash = ${quote(definition.onCrash)}`);
  if (definition.rng) missing.push(`rng = ${JSON.stringify(definition.rng)}`);
  if (definition.balloon) missing.push("balloon = true");
  if (definition.autostart) missing.push("autostart = true");
  return [...lines, ...missing.map((item) => `# not in xl.cfg: ${item}`)].join("\n") + "\n";
}
