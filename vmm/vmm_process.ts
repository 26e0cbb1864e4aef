/**
 * The life of one `denovisor vmm` process: from a validated config to end.json.
 *
 * Order matters to the daemon (vmm/README.md): the first machine is built before
 * anything is announced (a VM that cannot be built exits 1 with the reason in the log
 * and on stderr, and no pid file); then the console and control sockets listen; then
 * vmm.pid appears; the VM runs; end.json is written (atomically) before the sockets and
 * the pid file are removed and the process exits 0.
 *
 * @module
 */

import { join } from "node:path";
import { Kvm } from "../core/kvm.ts";
import { closeFd, errno, openFile } from "../ffi/libc.ts";
import { dup2 } from "../ffi/fs.ts";
import { DenovisorError, type ErrorCode } from "../common/errors.ts";
import { SyscallError } from "../ffi/errno.ts";
import { O_CLOEXEC, O_CREAT } from "../ffi/libc_symbols.ts";
import { ConsoleHub, removeIfExists } from "./console_hub.ts";
import { controlRouter, serveControl } from "./control_api.ts";
import { loadBootImage } from "./builder.ts";
import { describeVirtioPlan, planDevices } from "./device_plan.ts";
import { VmmDomain } from "./vmm_domain.ts";
import { dropVcpuWorkers, prestartVcpuWorkers } from "./vcpu_workers.ts";
import type { VmmConfig, VmmEndRecord, VmmStatus } from "./vmm_config.ts";
import { runFiles } from "./run_files.ts";
import { DEFAULT_SECCOMP_MODE, enterSeccomp, type SeccompMode } from "./sandbox/seccomp_filter.ts";

const O_WRONLY = 0o1;
const O_APPEND = 0o2000;

/**
 * Points stdout and stderr at the log file once the VMM has started. Until then they
 * carry start failures to whoever spawned the VMM (the daemon reads them); afterwards
 * that reader may be gone, and a write to a broken pipe would fail (or block on a full
 * one) inside a device's warning.
 */
export function redirectStdioTo(logFile: string): void {
  const fd = openFile(logFile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600);
  try {
    for (const target of [1, 2]) {
      if (dup2(fd, target) < 0) throw new SyscallError("dup2", errno());
    }
  } finally {
    closeFd(fd);
  }
}

/** A VMM that cannot start: another VMM serves the directory (`busy`), a missing run dir... */
export class VmmStartError extends DenovisorError {
  constructor(message: string, code: ErrorCode = "invalid") {
    super(code, message);
  }
}

/**
 * Writes `text` to `path` atomically: temp file, fsync, rename, fsync of the directory.
 * `durable: false` leaves out the fsyncs, for a file that means nothing after a host crash
 * (the pid file: it is written in a received guest's switch-over pause, where the two
 * fsyncs cost 5-25 ms here).
 */
export async function writeFileAtomic(
  path: string,
  text: string,
  options: { durable?: boolean } = {},
): Promise<void> {
  const durable = options.durable ?? true;
  const tmp = `${path}.tmp-${Deno.pid}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    await file.write(new TextEncoder().encode(text));
    if (durable) await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
  if (!durable) return;
  try {
    const dir = await Deno.open(join(path, ".."), { read: true });
    try {
      await dir.sync();
    } finally {
      dir.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is atomic.
  }
}

async function refuseIfServed(socket: string): Promise<void> {
  try {
    const conn = await Deno.connect({ transport: "unix", path: socket });
    conn.close();
  } catch {
    return; // Nobody listens: a leftover from a VMM that died.
  }
  throw new VmmStartError(
    `Another VMM serves ${socket}; destroy that domain first or use another run directory`,
    "busy",
  );
}

/** How `runVmm` confines its process. */
export interface VmmRunOptions {
  /** The seccomp mode entered once the sockets listen, before the guest runs. */
  seccomp?: SeccompMode;
}

/** Runs the domain of `config` to its end; returns the process exit status. */
export async function runVmm(config: VmmConfig, options: VmmRunOptions = {}): Promise<number> {
  const files = runFiles(config.runDir);
  const info = await Deno.stat(config.runDir).catch(() => undefined);
  if (!info?.isDirectory) {
    throw new VmmStartError(`Run directory ${config.runDir} does not exist; create it first`);
  }
  await refuseIfServed(files.controlSocket);
  // A previous run's end record would be mistaken for this one's.
  for (const path of Object.values(files)) removeIfExists(path);

  const hub = new ConsoleHub(config.logFile);
  hub.log(`starting domain ${config.name} (${config.uuid}), pid ${Deno.pid}`);
  // A restored or received machine is ready in tens of ms: its vCPU Workers, which take
  // longer to load, start now and load while the state is read (./vcpu_workers.ts).
  if (config.restore !== undefined || config.migrateIn !== undefined) {
    prestartVcpuWorkers(config.vcpus);
  }
  using kvm = Kvm.open();
  let domain!: VmmDomain;
  let finalStatus: VmmStatus | undefined;
  let endWritten!: () => void;
  const ended = new Promise<void>((resolve) => endWritten = resolve);
  const destroy = async (source: string) => {
    domain.destroy(source);
    await ended;
    return finalStatus ?? domain.status();
  };
  let server: Deno.HttpServer | undefined;
  /** The sockets listen, then the system-call filter: the last steps before the guest runs. */
  const listenAndConfine = async () => {
    hub.listen(files.consoleSocket);
    server = await serveControl(files.controlSocket, controlRouter(domain, { destroy }));
    enterSeccomp(options.seccomp ?? DEFAULT_SECCOMP_MODE, (line) => hub.log(line));
  };
  try {
    const boot = await loadBootImage(config.boot);
    domain = new VmmDomain({ config, kvm, boot, hub });
    if (config.migrateIn !== undefined) {
      // A received machine is restored in the switch-over's pause: listen and enter the
      // filter while the pages are still coming (tens of ms out of the downtime).
      const prepared = domain.prepare();
      prepared.catch(() => {}); // awaited below
      await listenAndConfine();
      await prepared;
    } else {
      await domain.prepare();
    }
    hub.log(`devices: ${describeVirtioPlan(planDevices(config))}`);
  } catch (error) {
    dropVcpuWorkers();
    hub.log(`cannot start: ${error instanceof Error ? error.message : String(error)}`);
    endWritten(); // a destroy asked meanwhile is answered
    await server?.shutdown();
    removeIfExists(files.controlSocket);
    removeIfExists(files.consoleSocket);
    await hub.close();
    throw error;
  }

  const onTerm = () => void destroy("SIGTERM");
  const onInt = () => void destroy("SIGINT");
  // The daemon's session or terminal going away must not end the domain.
  const onHup = () => hub.log("SIGHUP ignored");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGHUP", onHup);

  let record: VmmEndRecord;
  try {
    if (server === undefined) await listenAndConfine();
    await writeFileAtomic(files.pidFile, `${Deno.pid}\n`, { durable: false });
    redirectStdioTo(config.logFile);
    record = await domain.run();
    domain.markEnded();
    finalStatus = domain.status();
    await writeFileAtomic(files.endFile, JSON.stringify(record, null, 2) + "\n");
    hub.log(`ended: ${record.kind}: ${record.detail}`);
  } finally {
    dropVcpuWorkers();
    endWritten();
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGINT", onInt);
    // SIGHUP stays ignored until the process is gone.
    await hub.close();
    // Lets an in-flight answer (a destroy's) go out, then stops listening.
    await server?.shutdown();
    removeIfExists(files.controlSocket);
    removeIfExists(files.consoleSocket);
    removeIfExists(files.pidFile);
  }
  return 0;
}
