/**
 * The contract between the daemon and `denovisor vmm`, the process that runs one domain.
 *
 * The daemon resolves a `DomainDefinition` (pool volumes to paths, formats probed, MACs
 * and uuid filled in) into a `VmmConfig`, writes it to `<domainRunDir>/config.json` and
 * starts `denovisor vmm --config <domainRunDir>/config.json` detached (own session,
 * stdio to the log file), so that the VMM outlives a daemon restart. The VMM:
 *   - writes its pid to `<domainRunDir>/vmm.pid` once its control socket listens;
 *   - serves the control API (HTTP+JSON) on `<domainRunDir>/vmm.sock`, mode 0600;
 *   - serves the console on `<domainRunDir>/console.sock` (protocol below);
 *   - appends console output and its own log lines to `logFile`;
 *   - when the VM ends for good, writes `VmmEndRecord` to `<domainRunDir>/end.json`
 *     (atomically) and exits 0. A VMM that dies without end.json has crashed.
 *
 * Control API (all under the VMM's socket):
 *   GET  /vm           -> VmmStatus
 *   POST /vm/pause     -> VmmStatus
 *   POST /vm/resume    -> VmmStatus
 *   POST /vm/shutdown  -> VmmStatus  (the ACPI power button when the guest listens for
 *                                      it (firmware boot), else Ctrl-Alt-Del through the
 *                                      i8042, as Firecracker; a guest reset after it counts
 *                                      as power-off)
 *   POST /vm/reboot    -> VmmStatus  (hard reset: the machine is rebuilt in this process)
 *   POST /vm/ctrl-alt-del -> VmmStatus (asks the guest to reboot: Ctrl-Alt-Del through the
 *                                      i8042; the reset that follows is a reboot)
 *   POST /vm/destroy   -> VmmStatus  (stops the VM now; the process then exits)
 *   GET  /vm/stats     -> DomainStats (manager/api_types.ts)
 *   PUT  /vm/balloon   { targetBytes } -> VmmStatus   (needs `balloon: true`; targetBytes
 *                                      is the balloon's size, the RAM taken from the guest:
 *                                      mem-set M sends memoryBytes - M)
 *   POST /vm/save      VmmSaveRequest -> VmmSaveResult  (below)
 *
 * Save (`POST /vm/save`, body `VmmSaveRequest`): the VMM pauses the machine if it runs,
 * holds its device event loop, and writes the memory file (sparse: zero pages are holes)
 * then the state file that names it by basename, each atomically (temporary name, fsync,
 * rename); a state file already at `stateFile` is removed first. The memory file must be
 * in the state file's directory (400 otherwise); `inline: true` puts RAM in the state
 * file and writes no memory file (`memoryFile` must then be absent). Afterwards the
 * machine runs again if `resume` is true (a checkpoint), else it stays paused (the
 * daemon then destroys it: `xl save`). A failed save (ENOSPC...) leaves neither file and
 * the machine as it was, running or paused; its error is coded (400 invalid request, 409
 * conflict: no machine, 500/503 an I/O failure). Formats:
 * docs/state-format.md. A save may take long: give it minutes, not seconds.
 *
 * Restore: a config with `restore` (`VmmRestoreConfig`) makes the VMM build its first
 * machine from the state file instead of booting: the state is checked whole against
 * this config (same vCPUs, RAM and devices by id, kind and place; disks the same images
 * unless `force`) and against this host's CPU features before anything is built, guest
 * RAM maps the memory file copy-on-write, and the vCPUs start running, or paused when
 * `paused` (POST /vm/resume runs them). A state that cannot be restored fails the start
 * (exit 1, no vmm.pid, `cannot start: ...` in the log), as any failed build. A reboot
 * later boots afresh.
 *
 * Console protocol (unix stream socket): the client sends one line, "rw\n" or "ro\n", or
 * "rw!\n" to take the keyboard from the client that has it (which is told, and watches).
 * The VMM answers one line, "ok rw\n" or "ok ro\n" ("ok ro" also when rw was asked
 * while another client holds the console read-write), then sends the last 64 KiB of
 * output followed by live output. Bytes from the read-write client go to the guest's
 * console input; bytes from read-only clients are dropped. Any number of read-only
 * clients may attach; disconnecting releases read-write.
 *
 * @module
 */

import type { DomainState, ImageFormat, LifecycleAction, Transport } from "../common/enums.ts";
import type { RateLimiterConfig } from "../devices/virtio/rate_limiter.ts";

export interface VmmDiskConfig {
  /**
   * The disk's stable id: stats, logs and saved state key by it. Omitted: its Linux name
   * by position (`diskName()` in vmm/device_names.ts: vda, vdb... vdz, vdaa...).
   */
  id?: string;
  /** Absolute path of the image (the top of a qcow2 chain). */
  path: string;
  /**
   * The daemon always gives it (it probed the image when it resolved the domain). Omitted
   * (`denovisor run` without format=): probed when the image is opened, and a probed raw
   * image refuses a qcow2 header written by its guest.
   */
  format?: ImageFormat;
  readOnly: boolean;
  serial?: string;
  transport: Transport;
  rateLimit?: RateLimiterConfig;
}

/** A disk on the AHCI (SATA) controller of a firmware boot, through the same image layer. */
export interface VmmSataDiskConfig {
  /** Absolute path of the image (the top of a qcow2 chain). */
  path: string;
  /** Probed when the image is opened if omitted, as for virtio disks. */
  format?: "raw" | "qcow2";
  readOnly: boolean;
}

export interface VmmNicConfig {
  /** The NIC's stable id. Omitted: `nicName()` by position (net0, net1...). */
  id?: string;
  /** A tap name, or "auto" for one the VMM creates and removes. */
  tap: string;
  /**
   * The daemon always gives it. Omitted (`denovisor run` without mac=): a random locally
   * administered unicast MAC, new at each boot.
   */
  mac?: string;
  bridge?: string;
  transport: Transport;
  rateLimit?: RateLimiterConfig;
}

/**
 * What to boot: a kernel, or the embedded demo guest (which `denovisor run` may also give
 * a command line and an initrd).
 */
export type VmmBootConfig =
  | { kind: "demo"; cmdline?: string; initrd?: string }
  | { kind: "linux"; kernel: string; initrd?: string; cmdline: string }
  /**
   * A PC BIOS image (Debian's SeaBIOS: /usr/share/seabios/bios.bin) on an i440FX
   * platform with fw_cfg and ACPI; `order` says which boot devices it tries first
   * (default disk, then cdrom).
   */
  | { kind: "firmware"; firmware: string; order?: ("disk" | "cdrom")[] };

/**
 * The machine itself: everything the builder (vmm/builder.ts) reads, and what `denovisor
 * run` fills from its flags. Device ids: disks and NICs carry theirs (`id`), the others
 * have fixed ones (vmm/device_names.ts: serial0, i8042, rtc, pci-host, rng0, balloon0,
 * console0).
 */
export interface VmmMachineConfig {
  vcpus: number;
  memoryBytes: number;
  boot: VmmBootConfig;
  disks: VmmDiskConfig[];
  nics: VmmNicConfig[];
  rng?: { rateLimit?: RateLimiterConfig };
  balloon: boolean;
  /** A virtio console that takes the console input; the serial port stays. */
  virtioConsole?: boolean;
  /** ISO images (absolute paths) on ATAPI CD-ROM drives of an AHCI controller; firmware boot only. */
  cdroms?: string[];
  /** Disks on the AHCI controller's first ports (before the CD-ROMs); firmware boot only. */
  sataDisks?: VmmSataDiskConfig[];
  /** Where the rng, balloon and virtio console sit (disks and NICs say their own); default pci. */
  transport?: Transport;
}

/** `VmmConfig.restore`: build the first machine from a saved state instead of booting. */
export interface VmmRestoreConfig {
  /** Absolute path of the state file; its memory file (if any) is beside it. */
  stateFile: string;
  /** Leave the vCPUs paused after the restore (POST /vm/resume runs them). */
  paused: boolean;
  /** Restore although a disk is not the image (file identity, size) it was at the save. */
  force?: boolean;
}

/** POST /vm/save's body. */
export interface VmmSaveRequest {
  /** Absolute path of the state file to write. */
  stateFile: string;
  /** Absolute path of the memory file, in the state file's directory; default stateFile + ".mem". */
  memoryFile?: string;
  /** Guest RAM inside the state file; no memory file (then `memoryFile` must be absent). */
  inline?: boolean;
  /** Run the machine again after the save (a checkpoint); default false: it stays paused. */
  resume?: boolean;
}

/** POST /vm/save's answer. */
export interface VmmSaveResult {
  stateFile: string;
  /** Absent for an inline save. */
  memoryFile?: string;
  /** The state file's size in bytes. */
  stateBytes: number;
  /** Guest RAM bytes written (non-zero pages; the rest are holes or left out). */
  memoryDataBytes: number;
  /** How long the vCPUs were paused for the save (0 when the machine was paused already). */
  pausedMs: number;
}

export interface VmmConfig extends VmmMachineConfig {
  name: string;
  uuid: string;
  /** What the VMM does itself when the guest resets: "restart" rebuilds the VM in-process. */
  onReboot: LifecycleAction;
  /** Absolute path; the VMM appends to it. */
  logFile: string;
  /** The directory holding vmm.sock, console.sock, vmm.pid and end.json. */
  runDir: string;
  /** Build the first machine from this saved state instead of booting it. */
  restore?: VmmRestoreConfig;
  /**
   * Build the first machine from an incoming migration relayed by the daemon on this
   * unix socket (absolute path) instead of booting it (vmm/migration/vmm_endpoint.ts).
   */
  migrateIn?: { socket: string };
}

export interface VmmStatus {
  name: string;
  uuid: string;
  pid: number;
  /** "running", "paused", "shutting-down"; "shutoff" once ended (just before exit). */
  state: DomainState;
  /** ISO 8601 start time of the VMM. */
  startedAt: string;
  /** How many times the machine was (re)built in this process. */
  boots: number;
}

/** Why the VM ended, as the daemon reads it from end.json. */
export interface VmmEndRecord {
  /** poweroff: guest powered off (or reset after a shutdown request, or debug exit 0);
   *  reboot: guest reset with onReboot other than restart; crash: triple fault, emulation
   *  failure, vCPU error, debug exit with a non-zero status; destroyed: by request. */
  kind: "poweroff" | "reboot" | "crash" | "destroyed";
  /** Words for people, e.g. "triple fault on vCPU 0 at RIP 0x1000". */
  detail: string;
  /** ISO 8601. */
  time: string;
}
