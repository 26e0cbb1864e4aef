/**
 * The text of `denovisor.service`, the systemd unit that runs `denovisor daemon`.
 *
 * Stop behaviour: KillMode=process, so stopping or restarting the service signals only
 * the daemon; the per-domain VMM processes keep running (their sockets live in the
 * preserved runtime directory) and the next daemon re-attaches to them. To stop the
 * domains themselves, shut them down before stopping the service.
 *
 * Hardening is limited to what cannot break a hypervisor's children, which inherit the
 * sandbox: no PrivateDevices or DeviceAllow (they need /dev/kvm, /dev/net/tun, loop
 * devices), no ProtectClock (it implies a device allow-list), no PrivateTmp or
 * ProtectHome (disk images may live anywhere), no MemoryDenyWriteExecute (V8 JITs).
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_SOCKET, DEFAULT_STATE_DIR } from "../paths.ts";

/** The unit's file name. */
export const UNIT_NAME = "denovisor.service";
/** First line of every unit Denovisor writes, so install can tell its own from others. */
export const UNIT_MARKER = "# Written by 'denovisor install'";

/** What the unit runs and where. */
export interface UnitOptions {
  /** The argv that runs the denovisor CLI (default: `denovisorCommand()`). */
  command?: string[];
  /** State directory (default /var/lib/denovisor). */
  stateDir?: string;
  /** API socket (default /run/denovisor/api.sock); its directory is the runtime directory. */
  socket?: string;
  /** Passed to `denovisor daemon --socket-group`. */
  socketGroup?: string;
  /** Each passed to `denovisor daemon --pool-root` (where socket-group members put pools). */
  poolRoots?: readonly string[];
}

/**
 * The argv that runs this denovisor: the executable itself when compiled, else the deno
 * binary with the permissions Denovisor needs and the absolute path of main.ts.
 */
export function denovisorCommand(): string[] {
  const exec = Deno.execPath();
  if (!/^deno(\.exe)?$/.test(basename(exec))) return [exec];
  const main = fileURLToPath(new URL("../../main.ts", import.meta.url));
  return [exec, "run", "--allow-all", "--no-prompt", main];
}

/** One ExecStart argument in systemd's syntax: quoted when needed, % and $ escaped. */
export function quoteExecArgument(argument: string): string {
  const escaped = argument.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  if (escaped !== "" && /^[^\s"'\\;]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** `/var/lib/x` -> "x" for StateDirectory=; undefined when `dir` is not below `root`. */
function below(root: string, dir: string): string | undefined {
  const prefix = `${root}/`;
  return dir.startsWith(prefix) && dir.length > prefix.length
    ? dir.slice(prefix.length)
    : undefined;
}

/** The unit file text. */
export function denovisorUnit(options: UnitOptions = {}): string {
  const command = options.command ?? denovisorCommand();
  const stateDir = resolve(options.stateDir ?? DEFAULT_STATE_DIR);
  const socket = resolve(options.socket ?? DEFAULT_SOCKET);
  const runDir = dirname(socket);
  const daemonArgs = ["daemon", "--state-dir", stateDir, "--socket", socket];
  if (options.socketGroup !== undefined) daemonArgs.push("--socket-group", options.socketGroup);
  for (const root of options.poolRoots ?? []) daemonArgs.push("--pool-root", resolve(root));
  const isDeno = command.length > 1;
  const stateName = below("/var/lib", stateDir);
  const runName = below("/run", runDir);
  const lines = [
    UNIT_MARKER,
    "[Unit]",
    "Description=Denovisor hypervisor toolstack daemon",
    "Documentation=https://github.com/denovisor/denovisor",
    "After=network.target",
    "",
    "[Service]",
    "Type=notify",
    "NotifyAccess=main",
    `ExecStart=${[...command, ...daemonArgs].map(quoteExecArgument).join(" ")}`,
    // Only the daemon is signalled on stop and restart: the VMMs keep the domains running.
    "KillMode=process",
    "Restart=on-failure",
    "RestartSec=2s",
    // Under `deno run` the first start type-checks and compiles: give it time.
    `TimeoutStartSec=${isDeno ? "120s" : "30s"}`,
    "TimeoutStopSec=30s",
    ...(stateName
      ? [`StateDirectory=${stateName}`, "StateDirectoryMode=0700"]
      : [`ReadWritePaths=-${stateDir}`]),
    ...(runName
      ? [
        `RuntimeDirectory=${runName}`,
        "RuntimeDirectoryMode=0700",
        // The VMMs' sockets live here and outlive a daemon restart.
        "RuntimeDirectoryPreserve=yes",
      ]
      : [`ReadWritePaths=-${runDir}`]),
    ...(isDeno
      ? ["CacheDirectory=denovisor", "Environment=DENO_DIR=/var/cache/denovisor/deno"]
      : []),
    "UMask=0077",
    "LimitNOFILE=1048576",
    // Every vCPU is a thread of a VMM in this unit's cgroup.
    "TasksMax=infinity",
    // The daemon makes one cgroup per domain below its own (manager/sandbox/cgroup.ts).
    "Delegate=yes",
    "NoNewPrivileges=yes",
    "ProtectSystem=full",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectKernelTunables=yes",
    "ProtectHostname=yes",
    "LockPersonality=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6 AF_PACKET",
    "SystemCallArchitectures=native",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
  ];
  return lines.join("\n") + "\n";
}
