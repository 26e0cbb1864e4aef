/**
 * `denovisor daemon`: the toolstack's service (manager/daemon/server.ts).
 *
 * @module
 */

import { DEFAULT_SOCKET, DEFAULT_STATE_DIR, PATH_OPTIONS } from "../manager/paths.ts";
import { startDaemon } from "../manager/daemon/server.ts";
import { DEFAULT_VMM_POOL_SIZE } from "../manager/sandbox/vmm_pool.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";
import { parseSize } from "../common/units.ts";
import { DEFAULT_LOG_LIMITS, type LogLimits, setLogLimits } from "../manager/daemon/console_log.ts";
import {
  type MetricsListenOptions,
  parseCidr,
  parseListenAddress,
} from "../manager/daemon/metrics_listener.ts";
import { FARM_DAEMON_HELP, FARM_DAEMON_OPTIONS, farmOptions } from "./farm_daemon_options.ts";
import {
  MIGRATION_DAEMON_HELP,
  MIGRATION_DAEMON_OPTIONS,
  migrationFlags,
} from "./migration_daemon_options.ts";

export const DAEMON_HELP = `Usage: denovisor daemon [options]

Runs the Denovisor service: owns the state directory (domain and pool definitions),
serves the HTTP+JSON API on a unix socket (GET /v1/openapi.json describes it) and runs
one VMM process ('denovisor vmm') per running domain. systemd starts it from
denovisor.service; it tells systemd when it is ready (Type=notify).

Running domains keep running when the daemon stops or dies: a restarted daemon takes
their VMMs over again, applies on_poweroff/on_reboot/on_crash to those that ended
meanwhile, then starts the domains marked autostart.

Options:
  --state-dir DIR       State directory (default ${DEFAULT_STATE_DIR}, or
                        DENOVISOR_STATE_DIR); one daemon per directory
  --socket PATH         API socket (default ${DEFAULT_SOCKET}, or DENOVISOR_SOCKET);
                        the VMMs' run directories go beside it
  --socket-group GROUP  Let members of GROUP use the API (socket 0660, directory
                        0750), confined: they may read, run the lifecycle verbs,
                        define domains on pool volumes and manage pools under
                        --pool-root; root's clients use admin.sock (0600) beside
                        the socket. Without it only root can (socket 0600,
                        directory 0700)
  --pool-root DIR       Where socket-group members may put pools, and import from
                        and export into (repeatable); default none
  --backing-dir DIR     Also allow backing files of imported images and of domain
                        disks under DIR (repeatable); by default a backing file must
                        lie in a pool or beside the disk's own image
  --metrics-listen ADDR:PORT
                        Serve GET /metrics (Prometheus text) on TCP too, e.g.
                        0.0.0.0:9177 or [::]:9177; the API socket always serves it
  --metrics-allow CIDR  Who may scrape that address (repeatable, e.g. 10.0.0.0/8);
                        default loopback only
  --log-max-size SIZE   Rotate a domain's console log past SIZE (default 10M): its
                        tail moves to <log>.1, .1 to .2...
  --log-max-files N     Files kept per domain log, the live one included (default
                        5): at most SIZE x N of disk per domain
  --vmm-pool N          Keep N jailed VMM processes started ahead of any domain, each
                        taken by one domain's start and never reused (default
                        ${DEFAULT_VMM_POOL_SIZE}: none); a start then skips the jail set-up and
                        Deno's start-up. Each waiting VMM holds about 80 MiB
  --openapi             Print the API's OpenAPI 3.1 document (what GET
                        /v1/openapi.json serves) and exit; no daemon is started
  -h, --help            Show this help
${FARM_DAEMON_HELP}
${MIGRATION_DAEMON_HELP}

Stops on SIGTERM or SIGINT (the socket is removed; the VMMs keep running).`;

/** The --metrics-* options, checked before anything starts (a mistake is a usage error). */
function metricsOptions(
  listen: string | undefined,
  allow: string[] | undefined,
): MetricsListenOptions | undefined {
  if (listen === undefined) {
    if (allow !== undefined) throw new UsageError("daemon: --metrics-allow needs --metrics-listen");
    return undefined;
  }
  try {
    parseListenAddress(listen);
    for (const each of allow ?? []) parseCidr(each);
  } catch (error) {
    throw new UsageError(`daemon: ${(error as Error).message}`);
  }
  return { listen, allow };
}

/** The --log-max-* options (a mistake is a usage error). */
function logLimitOptions(size: string | undefined, files: string | undefined): LogLimits {
  const limits = { ...DEFAULT_LOG_LIMITS };
  try {
    if (size !== undefined) limits.maxBytes = parseSize(size, "--log-max-size", "b");
    if (files !== undefined) {
      limits.files = /^\d+$/.test(files) ? Number(files) : NaN;
    }
    setLogLimits(limits);
  } catch (error) {
    throw new UsageError(`daemon: ${(error as Error).message}`);
  }
  return limits;
}

/** Runs the daemon until it is told to stop; returns the exit status. */
export async function daemonCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs("daemon", args, {
    ...PATH_OPTIONS,
    "socket-group": { type: "string" },
    "backing-dir": { type: "string", multiple: true },
    "pool-root": { type: "string", multiple: true },
    "metrics-listen": { type: "string" },
    "metrics-allow": { type: "string", multiple: true },
    ...FARM_DAEMON_OPTIONS,
    ...MIGRATION_DAEMON_OPTIONS,
    "log-max-size": { type: "string" },
    "log-max-files": { type: "string" },
    "vmm-pool": { type: "string" },
    openapi: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(DAEMON_HELP);
    return 0;
  }
  if (values.openapi) {
    const { OPENAPI_DOCUMENT } = await import("../manager/daemon/openapi.ts");
    console.log(JSON.stringify(OPENAPI_DOCUMENT, null, 2));
    return 0;
  }
  // Everything the daemon creates (logs, definitions, run files; and its VMMs, which
  // inherit this) is private whatever umask it was started with; modes that must be
  // wider (the socket for a --socket-group) are set explicitly.
  Deno.umask(0o077);
  setLogLimits(logLimitOptions(values["log-max-size"], values["log-max-files"]));
  const metrics = metricsOptions(values["metrics-listen"], values["metrics-allow"]);
  const farm = await farmOptions(values);
  const migration = await migrationFlags(values);
  const vmmPool = values["vmm-pool"] ?? String(DEFAULT_VMM_POOL_SIZE);
  if (!/^\d{1,3}$/.test(vmmPool)) {
    throw new UsageError(`daemon: --vmm-pool '${vmmPool}' is not a count from 0 to 999`);
  }
  const daemon = await startDaemon({
    vmmPool: Number(vmmPool),
    stateDir: values["state-dir"],
    socket: values.socket,
    socketGroup: values["socket-group"],
    backingDirectories: values["backing-dir"],
    poolRoots: values["pool-root"],
    farm,
    migration,
    metrics,
  });
  await daemon.finished;
  return 0;
}
