/**
 * `denovisor install`: writes denovisor.service (manager/systemd/unit.ts), creates the
 * state and runtime directories, and tells systemd (daemon-reload, optionally enable
 * --now) when systemd runs this host. `--uninstall` takes the unit away again.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { EXIT_STATUS } from "../core/vm_end.ts";
import { PATH_OPTIONS, resolvePaths } from "../manager/paths.ts";
import {
  denovisorCommand,
  denovisorUnit,
  UNIT_MARKER,
  UNIT_NAME,
} from "../manager/systemd/unit.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";
import { accountIds, VMM_ACCOUNT } from "../manager/sandbox/vmm_user.ts";

export const INSTALL_HELP = `Usage: denovisor install [options]

Installs ${UNIT_NAME}, the systemd unit that runs 'denovisor daemon' (Type=notify,
restarted on failure), creates the 'denovisor' system account its VMMs run as (not
with --prefix or --unit-dir), the state and runtime directories (mode 0700) and runs
'systemctl daemon-reload' when systemd runs this host. Stopping or restarting the
service leaves running domains running; the next daemon takes them over.

Options:
  --unit-dir DIR        Where the unit goes (default /etc/systemd/system)
  --prefix DIR          Stage below DIR (for packages): the unit goes to
                        DIR/etc/systemd/system, the directories are made below DIR,
                        systemctl is not run; the unit still names the real paths
  --state-dir DIR       State directory of the daemon (default /var/lib/denovisor)
  --socket PATH         API socket (default /run/denovisor/api.sock); its
                        directory is the runtime directory
  --socket-group GROUP  Let members of GROUP use the API, confined (daemon
                        --socket-group)
  --pool-root DIR       Where members of that group may put pools (repeatable;
                        daemon --pool-root)
  --executable PATH     The denovisor executable the unit runs (default: this one;
                        under 'deno run', deno with main.ts)
  --enable              Also enable the service at boot and start it now
  --force               Replace a ${UNIT_NAME} that differs from this one
  --uninstall           Disable and stop the service, remove the unit (domains keep
                        running, the state directory is kept)
  --dry-run             Print the unit and what would be done; change nothing
  -h, --help            Show this help`;

/** How systemctl is reached; tests and staging installs have no systemd. */
function systemdRunning(): boolean {
  try {
    return Deno.statSync("/run/systemd/system").isDirectory;
  } catch {
    return false;
  }
}

async function systemctl(args: string[], report: (line: string) => void): Promise<void> {
  const { code, stderr } = await new Deno.Command("systemctl", {
    args,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (code !== 0) {
    throw new Error(
      `systemctl ${args.join(" ")} failed (exit ${code}): ${
        new TextDecoder().decode(stderr).trim()
      }`,
    );
  }
  report(`ran systemctl ${args.join(" ")}`);
}

function readIfExists(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function explainWriteError(error: unknown, path: string): Error {
  if (error instanceof Deno.errors.PermissionDenied) {
    return new Error(
      `Cannot write ${path}: permission denied; run as root (sudo denovisor install)`,
    );
  }
  return error as Error;
}

/** Creates `dir` (and parents) and makes it mode 0700 whatever the umask. */
function makePrivateDir(dir: string, dryRun: boolean, report: (line: string) => void): void {
  let existed = true;
  try {
    Deno.statSync(dir);
  } catch {
    existed = false;
  }
  if (dryRun) {
    report(`would ${existed ? "set mode 0700 on" : "create"} ${dir}${existed ? "" : " (0700)"}`);
    return;
  }
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(dir, 0o700);
  } catch (error) {
    throw explainWriteError(error, dir);
  }
  report(existed ? `${dir} exists (mode set to 0700)` : `created ${dir} (0700)`);
}

/**
 * Creates the `denovisor` system account the daemon's VMMs run as (no home, no shell, its
 * own group), unless it exists. A failure is reported, not fatal: the VMMs then run as
 * the fallback ids (manager/sandbox/vmm_user.ts).
 */
async function ensureVmmAccount(dryRun: boolean, report: (line: string) => void): Promise<void> {
  let passwd = "";
  try {
    passwd = Deno.readTextFileSync("/etc/passwd");
  } catch {
    // none: useradd makes it
  }
  if (accountIds(VMM_ACCOUNT, passwd) !== undefined) {
    report(`the VMMs run as the existing '${VMM_ACCOUNT}' account`);
    return;
  }
  const args = [
    "--system",
    "--user-group",
    "--no-create-home",
    "--home-dir",
    "/nonexistent",
    "--shell",
    "/usr/sbin/nologin",
    "--comment",
    "Denovisor VMMs",
    VMM_ACCOUNT,
  ];
  if (dryRun) {
    report(`would run useradd ${args.join(" ")}`);
    return;
  }
  try {
    const { code, stderr } = await new Deno.Command("useradd", {
      args,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (code !== 0) throw new Error(new TextDecoder().decode(stderr).trim() || `status ${code}`);
    report(`created the system account '${VMM_ACCOUNT}' for the VMMs`);
  } catch (error) {
    report(
      `could not create the '${VMM_ACCOUNT}' account (${(error as Error).message}); ` +
        "the VMMs run as uid/gid 64770",
    );
  }
}

/** Runs `denovisor install`; returns the exit status. */
export async function installCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs("install", args, {
    ...PATH_OPTIONS,
    "unit-dir": { type: "string" },
    prefix: { type: "string" },
    "socket-group": { type: "string" },
    "pool-root": { type: "string", multiple: true },
    executable: { type: "string" },
    enable: { type: "boolean" },
    force: { type: "boolean" },
    uninstall: { type: "boolean" },
    "dry-run": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(INSTALL_HELP);
    return EXIT_STATUS.OK;
  }
  if (values.uninstall && values.enable) {
    throw new UsageError("install: --uninstall and --enable contradict each other; give one");
  }
  const prefix = values.prefix === undefined ? undefined : resolve(values.prefix);
  const staged = (path: string) => (prefix === undefined ? path : join(prefix, path));
  const unitDir = resolve(values["unit-dir"] ?? staged("/etc/systemd/system"));
  const unitPath = join(unitDir, UNIT_NAME);
  const paths = resolvePaths({ stateDir: values["state-dir"], socket: values.socket });
  const dryRun = values["dry-run"] ?? false;
  const report = (line: string) => console.log(line);
  const useSystemctl = prefix === undefined && systemdRunning();
  const existing = readIfExists(unitPath);

  if (values.uninstall) {
    if (existing === undefined) {
      report(`${unitPath} does not exist; nothing to remove`);
      return EXIT_STATUS.OK;
    }
    if (!existing.startsWith(UNIT_MARKER) && !values.force) {
      throw new Error(
        `${unitPath} was not written by 'denovisor install'; remove it yourself or add --force`,
      );
    }
    if (dryRun) {
      report(
        `would ${useSystemctl ? "disable and stop the service, then " : ""}remove ${unitPath}`,
      );
      return EXIT_STATUS.OK;
    }
    if (useSystemctl) await systemctl(["disable", "--now", UNIT_NAME], report);
    Deno.removeSync(unitPath);
    report(`removed ${unitPath}; running domains keep running, ${paths.stateDir} is kept`);
    if (useSystemctl) await systemctl(["daemon-reload"], report);
    return EXIT_STATUS.OK;
  }

  const command = values.executable === undefined
    ? denovisorCommand()
    : [resolve(values.executable)];
  const unit = denovisorUnit({
    command,
    stateDir: paths.stateDir,
    socket: paths.socket,
    socketGroup: values["socket-group"],
    poolRoots: values["pool-root"],
  });
  if (existing !== undefined && existing !== unit && !values.force) {
    throw new Error(
      `${unitPath} exists and differs from the unit this denovisor writes; see the difference with --dry-run, then add --force to replace it`,
    );
  }
  if (dryRun) {
    report(`would write ${unitPath}:`);
    console.log(unit.trimEnd().split("\n").map((line) => `  ${line}`).join("\n"));
  } else if (existing === unit) {
    report(`${unitPath} is already up to date`);
  } else {
    try {
      Deno.mkdirSync(unitDir, { recursive: true });
      const temporary = `${unitPath}.tmp-${Deno.pid}`;
      Deno.writeTextFileSync(temporary, unit, { mode: 0o644 });
      Deno.chmodSync(temporary, 0o644);
      Deno.renameSync(temporary, unitPath);
    } catch (error) {
      throw explainWriteError(error, unitPath);
    }
    report(`${existing === undefined ? "wrote" : "replaced"} ${unitPath}`);
  }
  report(`the service runs: ${command.join(" ")} daemon`);
  makePrivateDir(staged(paths.stateDir), dryRun, report);
  makePrivateDir(staged(dirname(paths.socket)), dryRun, report);
  // Only for an install onto this system: a staged one (a package) or one into another
  // unit directory (a test) leaves the host's accounts alone.
  if (prefix === undefined && values["unit-dir"] === undefined) {
    await ensureVmmAccount(dryRun, report);
  } else {
    report(`the VMMs' user: create the '${VMM_ACCOUNT}' system account where this is installed`);
  }

  if (!useSystemctl) {
    report(
      prefix !== undefined
        ? "staged install: systemctl not run"
        : "systemd is not running on this host (no /run/systemd/system): skipped systemctl daemon-reload",
    );
    if (values.enable) {
      console.error(
        "denovisor: --enable: systemd is not running here; start 'denovisor daemon' yourself",
      );
      return EXIT_STATUS.ERROR;
    }
    return EXIT_STATUS.OK;
  }
  if (dryRun) {
    report(
      `would run systemctl daemon-reload${
        values.enable ? ` and systemctl enable --now ${UNIT_NAME}` : ""
      }`,
    );
    return EXIT_STATUS.OK;
  }
  await systemctl(["daemon-reload"], report);
  if (values.enable) await systemctl(["enable", "--now", UNIT_NAME], report);
  else report(`start it with: systemctl enable --now ${UNIT_NAME}`);
  return EXIT_STATUS.OK;
}
