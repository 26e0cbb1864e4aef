/**
 * The farm flags of `denovisor daemon` (manager/farm/): parsed here, handed to the
 * daemon as `FarmOptions`. `--etcd URL` joins a farm (named by --farm, default
 * "default"); without --etcd the daemon works alone, exactly as before.
 *
 * @module
 */

import type { FarmOptions } from "../manager/farm/farm_member.ts";
import { DEFAULT_LEASE_TTL_SECONDS } from "../manager/farm/farm_member.ts";
import { parseSizeArgument, UsageError } from "./usage_error.ts";
import { join } from "node:path";
import { resolvePaths } from "../manager/paths.ts";

/** The farm a daemon joins when --etcd is given without --farm. */
export const DEFAULT_FARM = "default";

/** The parseArgs options of the farm flags. */
export const FARM_DAEMON_OPTIONS = {
  farm: { type: "string" },
  etcd: { type: "string" },
  "etcd-cacert": { type: "string" },
  "etcd-cert": { type: "string" },
  "etcd-key": { type: "string" },
  "etcd-user": { type: "string" },
  "etcd-password-file": { type: "string" },
  host: { type: "string" },
  "host-name": { type: "string" },
  "host-address": { type: "string" },
  "host-label": { type: "string", multiple: true },
  "host-memory": { type: "string" },
  "host-vcpus": { type: "string" },
  "migration-listen": { type: "string" },
  "farm-lease-ttl": { type: "string" },
} as const;

/** The help lines of the farm flags. */
export const FARM_DAEMON_HELP = `
Farm (many hosts managed as one; the farm's state lives in etcd v3, docs/farm.md):
  --etcd URL[,URL...]   Join the farm kept in this etcd (client URLs, e.g.
                        https://10.0.0.1:2379); without it the daemon works alone
  --host NAME           This host's name in the farm (default: the hostname;
                        --host-name NAME is the same)
  --farm NAME           Which farm of that etcd (default: ${DEFAULT_FARM})
  --etcd-cacert FILE    CA of etcd's certificate (https)
  --etcd-cert FILE      Client certificate for etcd, with --etcd-key FILE
  --etcd-user USER      etcd user; its password is read from --etcd-password-file
                        FILE or DENOVISOR_ETCD_PASSWORD
  --host-address ADDR   Where it is reached (default: its name)
  --host-label K=V      A label placement rules match (repeatable)
  --host-memory SIZE    Memory offered to the farm (default: RAM less 10%, at most 1G)
  --host-vcpus N        vCPUs offered (default: 4 per CPU)
  --farm-lease-ttl S    Host lease TTL in seconds (default ${DEFAULT_LEASE_TTL_SECONDS}; >= 3):
                        a lost host's HA domains restart about S + 1 s later
The host's --migration-listen ADDR:PORT (below) is published to the farm: evacuation
and 'migrate NAME' move domains live between hosts that have one.`;

type Values =
  & { [K in keyof typeof FARM_DAEMON_OPTIONS]?: K extends "host-label" ? string[] : string }
  & { "state-dir"?: string };

/** The farm options from the parsed flags, or undefined without --etcd. */
export async function farmOptions(values: Values): Promise<FarmOptions | undefined> {
  const farmOnly = Object.keys(FARM_DAEMON_OPTIONS).filter((k) =>
    // --migration-listen also serves a daemon alone (cli/migration_daemon_options.ts).
    k !== "etcd" && k !== "migration-listen" && values[k as keyof Values] !== undefined
  );
  if (values.etcd === undefined) {
    if (farmOnly.length > 0) {
      throw new UsageError(`--${farmOnly[0]} needs --etcd URL[,URL...] (the farm's etcd)`);
    }
    return undefined;
  }
  const farm = values.farm ?? DEFAULT_FARM;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(farm)) {
    throw new UsageError(`--farm ${farm}: use letters, digits, '_', '.' and '-'`);
  }
  if (
    values.host !== undefined && values["host-name"] !== undefined &&
    values.host !== values["host-name"]
  ) {
    throw new UsageError(`--host ${values.host} and --host-name ${values["host-name"]} differ`);
  }
  const named = values.host ?? values["host-name"];
  if (named !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(named)) {
    throw new UsageError(`--host ${named}: use letters, digits, '_', '.' and '-'`);
  }
  const read = async (flag: string, path: string | undefined) => {
    if (path === undefined) return undefined;
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      throw new UsageError(`--${flag} ${path}: ${(error as Error).message}`);
    }
  };
  const labels: Record<string, string> = {};
  for (const label of values["host-label"] ?? []) {
    const match = /^([A-Za-z0-9][A-Za-z0-9_.-]*)=(.*)$/.exec(label);
    if (!match) throw new UsageError(`--host-label ${label}: expected KEY=VALUE`);
    labels[match[1]] = match[2];
  }
  const vcpus = values["host-vcpus"] === undefined ? undefined : Number(values["host-vcpus"]);
  if (vcpus !== undefined && !(Number.isSafeInteger(vcpus) && vcpus > 0)) {
    throw new UsageError(`--host-vcpus ${values["host-vcpus"]}: expected a whole number above 0`);
  }
  const ttl = values["farm-lease-ttl"] === undefined ? undefined : Number(values["farm-lease-ttl"]);
  if (ttl !== undefined && !(Number.isSafeInteger(ttl) && ttl >= 3 && ttl <= 3600)) {
    throw new UsageError(
      `--farm-lease-ttl ${values["farm-lease-ttl"]}: expected 3 to 3600 seconds`,
    );
  }
  const hostName = named ?? Deno.hostname();
  const password = values["etcd-user"] === undefined
    ? undefined
    : (await read("etcd-password-file", values["etcd-password-file"]))?.trim() ??
      Deno.env.get("DENOVISOR_ETCD_PASSWORD") ?? "";
  return {
    farm,
    etcd: {
      endpoints: values.etcd.split(",").map((url) => url.trim()).filter(Boolean),
      caCert: await read("etcd-cacert", values["etcd-cacert"]),
      cert: await read("etcd-cert", values["etcd-cert"]),
      key: await read("etcd-key", values["etcd-key"]),
      user: values["etcd-user"],
      password,
    },
    hostName,
    hostAddress: values["host-address"] ?? hostName,
    labels,
    memoryBytes: values["host-memory"] === undefined
      ? undefined
      : parseSizeArgument(values["host-memory"], "--host-memory", "m"),
    vcpus,
    migrationListen: values["migration-listen"],
    leaseTtlSeconds: ttl,
    leaseFile: join(resolvePaths({ stateDir: values["state-dir"] }).stateDir, "farm-lease"),
  };
}
