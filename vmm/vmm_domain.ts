/**
 * One domain inside `denovisor vmm`: builds its machine, runs it, rebuilds it in this
 * process on a reboot (or a guest reset with onReboot "restart"), and serves the control
 * requests (pause, resume, shutdown through Ctrl-Alt-Del, reboot, destroy, stats,
 * balloon). `run()` settles with the end record once the VM has ended for good.
 *
 * @module
 */

import type { Kvm } from "../core/kvm.ts";
import { describeEnd, type VmEndReason } from "../core/vm_end.ts";
import { type BootImage, build, restore } from "./builder.ts";
import type { Machine } from "./machine.ts";
import { BalloonError } from "../devices/virtio/balloon.ts";
import type { DomainState } from "../common/enums.ts";
import type { DomainStats } from "./domain_stats.ts";
import { ApiError } from "../common/http/mod.ts";
import type { ConsoleHub } from "./console_hub.ts";
import { DeviceCounters } from "./device_counters.ts";
import { residentBytes, threadCpuTimeNs } from "./proc_stats.ts";
import { VcpuCpuTimes } from "./vcpu_cpu_time.ts";
import { saveMachine } from "./snapshot/save_machine.ts";
import { migrateIn, migrateOut, type MigrateSendRequest } from "./migration/vmm_endpoint.ts";
import { MigrationOutcomeUnknownError, type MigrationResult } from "./migration/sender.ts";
import type {
  VmmConfig,
  VmmEndRecord,
  VmmSaveRequest,
  VmmSaveResult,
  VmmStatus,
} from "./vmm_config.ts";

const PAGE_SIZE = 4096;

/** Why the host asked the current machine to stop. */
type HostStop = { kind: "reboot" } | { kind: "destroy"; source: string };

/** The domain's machine and lifecycle. */
export class VmmDomain {
  readonly #config: VmmConfig;
  readonly #kvm: Kvm;
  readonly #boot: BootImage;
  readonly #hub: ConsoleHub;
  readonly #startedAt = new Date().toISOString();
  readonly #counters: DeviceCounters;
  #machine: Machine | undefined;
  #boots = 0;
  #paused = false;
  #shutdownRequested = false;
  #hostStop: HostStop | undefined;
  #destroySource: string | undefined;
  #ended = false;
  readonly #cpuTimes: VcpuCpuTimes;
  /** Control requests run one at a time (a pause must not race a reboot). */
  #queue: Promise<unknown> = Promise.resolve();
  #bootWaiters: Array<() => void> = [];
  /** The first machine was restored with `restore.paused`: its vCPUs wait for a resume. */
  #startPaused = false;
  /** A save under way: it reads guest RAM, so the machine is not closed before it ends. */
  #saving: Promise<unknown> | undefined;
  /** An outgoing migration under way (POST /vm/migrate-abort aborts it). */
  #migration: AbortController | undefined;
  /** The first machine came from an incoming migration: tells its source it runs. */
  #incomingStarted: (() => void) | undefined;

  constructor(options: { config: VmmConfig; kvm: Kvm; boot: BootImage; hub: ConsoleHub }) {
    this.#config = options.config;
    this.#kvm = options.kvm;
    this.#boot = options.boot;
    this.#hub = options.hub;
    this.#counters = new DeviceCounters(options.config);
    this.#cpuTimes = new VcpuCpuTimes(options.config.vcpus, threadCpuTimeNs);
  }

  /**
   * Builds the first machine without starting it, so that a VM that cannot be built
   * (a locked disk, a missing tap, a state that does not fit) fails the VMM before it
   * announces itself. With `config.restore`, the machine comes from the saved state.
   */
  async prepare(): Promise<void> {
    const incoming = this.#config.migrateIn;
    if (incoming !== undefined) {
      const context = { kvm: this.#kvm, console: this.#hub, boot: this.#boot };
      const received = await migrateIn(
        this.#config,
        context,
        incoming.socket,
        (line) => this.#hub.log(line),
      );
      this.#machine = received.machine;
      this.#incomingStarted = received.started;
      return;
    }
    const saved = this.#config.restore;
    if (saved === undefined) {
      this.#machine = this.#build();
      return;
    }
    const started = performance.now();
    this.#machine = await restore(
      this.#config,
      { stateFile: saved.stateFile, force: saved.force },
      { kvm: this.#kvm, console: this.#hub, boot: this.#boot },
    );
    this.#startPaused = saved.paused;
    this.#hub.log(
      `restored from ${saved.stateFile} in ${(performance.now() - started).toFixed(1)} ms` +
        (saved.paused ? ", paused" : ""),
    );
  }

  /** Runs machines until the VM ends for good; never throws. */
  async run(): Promise<VmmEndRecord> {
    for (;;) {
      let machine = this.#machine;
      this.#machine = undefined;
      if (this.#destroySource !== undefined) {
        await machine?.close();
        return record("destroyed", `destroyed (${this.#destroySource})`);
      }
      if (machine === undefined) {
        try {
          machine = this.#build();
        } catch (error) {
          return record("crash", `cannot rebuild the VM: ${message(error)}`);
        }
      }
      const end = await this.#runOne(machine);
      if (end !== undefined) return end;
    }
  }

  /** Runs one machine; undefined when the VM goes on with a new machine. */
  async #runOne(machine: Machine): Promise<VmmEndRecord | undefined> {
    this.#machine = machine;
    this.#boots++;
    this.#paused = this.#startPaused;
    this.#shutdownRequested = false;
    this.#hostStop = undefined;
    this.#counters.attach(machine.devices);
    this.#hub.setInput((bytes) => machine.consoleInput(bytes));
    machine.start({ paused: this.#startPaused });
    this.#startPaused = false; // a later machine (a reboot) boots and runs
    this.#hub.log(
      `boot ${this.#boots}: ${this.#config.vcpus} vCPUs, ${this.#config.memoryBytes} bytes`,
    );
    this.#bootWaiters.splice(0).forEach((wake) => wake());
    this.#incomingStarted?.(); // the migration's source may end now
    this.#incomingStarted = undefined;
    const reason = await machine.ended;
    // A destroy (or SIGTERM) during a save: let the save finish reading guest RAM first.
    await this.#saving?.catch(() => {});
    // Read the vCPU threads' CPU time before they exit with the machine.
    this.#cpuTimes.machineEnded(machine.vcpuStats);
    this.#hub.setInput(() => {});
    await machine.close();
    this.#counters.detach();
    this.#machine = undefined;
    return this.#decide(reason);
  }

  #decide(reason: VmEndReason): VmmEndRecord | undefined {
    const stop = this.#hostStop;
    if (this.#destroySource !== undefined || stop?.kind === "destroy") {
      return record("destroyed", `destroyed (${this.#destroySource ?? "request"})`);
    }
    if (stop?.kind === "reboot") {
      this.#hub.log("rebooting on request");
      return undefined;
    }
    const words = describeEnd(reason);
    switch (reason.kind) {
      case "reset":
        if (this.#shutdownRequested) {
          return record("poweroff", `guest reset after a shutdown request (${reason.source})`);
        }
        if (this.#config.onReboot === "restart") {
          this.#hub.log(`${words}; restarting (onReboot restart)`);
          return undefined;
        }
        return record("reboot", words);
      case "poweroff":
        return record("poweroff", words);
      case "debugExit":
        return record(reason.status === 0 ? "poweroff" : "crash", words);
      case "stopped":
        return record("destroyed", words);
      default:
        return record("crash", words);
    }
  }

  #build(): Machine {
    return build(this.#config, { kvm: this.#kvm, console: this.#hub, boot: this.#boot });
  }

  /** The current state as the control API reports it. */
  status(): VmmStatus {
    let state: DomainState = "running";
    if (this.#ended) state = "shutoff";
    else if (this.#paused) state = "paused";
    else if (this.#shutdownRequested) state = "shutting-down";
    return {
      name: this.#config.name,
      uuid: this.#config.uuid,
      pid: Deno.pid,
      state,
      startedAt: this.#startedAt,
      boots: this.#boots,
    };
  }

  /** Marks the VM ended (the process is about to exit). */
  markEnded(): void {
    this.#ended = true;
    // A reboot request waiting for a boot that will not come answers now.
    this.#bootWaiters.splice(0).forEach((wake) => wake());
  }

  pause(): Promise<VmmStatus> {
    return this.#serialized(async () => {
      const machine = this.#requireMachine("pause");
      if (!this.#paused) {
        await machine.pause();
        this.#paused = true;
        this.#hub.log("paused");
      }
    });
  }

  resume(): Promise<VmmStatus> {
    return this.#serialized(() => {
      const machine = this.#requireMachine("resume");
      if (this.#paused) {
        machine.resume();
        this.#paused = false;
        this.#hub.log("resumed");
      }
    });
  }

  /**
   * Saves the machine to a state file and a memory file (POST /vm/save): pauses it if it
   * runs, writes both files, then runs it again if `resume`, else leaves it paused. A
   * failed save leaves the machine as it was.
   */
  save(request: VmmSaveRequest): Promise<VmmSaveResult> {
    return this.#serializedValue(async () => {
      const machine = this.#requireMachine("save");
      const wasPaused = this.#paused;
      const pausedAt = performance.now();
      if (!wasPaused) await machine.pause();
      this.#paused = true;
      const saving = saveMachine(machine, this.#config, this.#kvm, {
        stateFile: request.stateFile,
        memoryFile: request.memoryFile,
        inline: request.inline,
        purpose: "save",
      });
      this.#saving = saving;
      let saved;
      try {
        saved = await saving;
      } catch (error) {
        if (!wasPaused) {
          machine.resume();
          this.#paused = false;
        }
        this.#hub.log(`save to ${request.stateFile} failed: ${message(error)}`);
        throw error;
      } finally {
        this.#saving = undefined;
      }
      if (request.resume) {
        machine.resume();
        this.#paused = false;
      }
      const pausedMs = wasPaused ? 0 : Math.round(performance.now() - pausedAt);
      this.#hub.log(
        `saved to ${saved.stateFile} (${saved.memoryDataBytes} bytes of RAM, ` +
          `${pausedMs} ms paused)${request.resume ? "; running" : "; paused"}`,
      );
      return { ...saved, pausedMs };
    });
  }

  /**
   * Presses the ACPI power button when the guest listens for it (firmware boot), else
   * Ctrl-Alt-Del; a guest reset that follows ends the VM as a power-off.
   */
  shutdown(): Promise<VmmStatus> {
    return this.#serialized(() => {
      const machine = this.#requireMachine("shut down");
      this.#shutdownRequested = true;
      if (machine.devices.pressPowerButton()) {
        this.#hub.log("shutdown requested: ACPI power button pressed");
        return;
      }
      const sent = machine.i8042.sendCtrlAltDel();
      this.#hub.log(
        sent
          ? "shutdown requested: Ctrl-Alt-Del sent to the guest"
          : "shutdown requested: the keyboard buffer is full, Ctrl-Alt-Del not sent",
      );
    });
  }

  /**
   * Asks the guest to reboot: Ctrl-Alt-Del, which Linux and most guests take as a reboot.
   * Unlike shutdown(), the reset that follows is a reboot (onReboot applies).
   */
  requestReboot(): Promise<VmmStatus> {
    return this.#serialized(() => {
      const machine = this.#requireMachine("reboot");
      if (!machine.i8042.sendCtrlAltDel()) {
        throw new ApiError(
          "busy",
          "The guest's keyboard buffer is full, so Ctrl-Alt-Del was not sent; retry, or reset",
        );
      }
      this.#hub.log("reboot requested: Ctrl-Alt-Del sent to the guest");
    });
  }

  /** Hard reset: the machine is rebuilt in this process; answers once the new one runs. */
  reboot(): Promise<VmmStatus> {
    return this.#serialized(async () => {
      const machine = this.#requireMachine("reboot");
      const booted = new Promise<void>((resolve) => this.#bootWaiters.push(resolve));
      this.#hostStop = { kind: "reboot" };
      machine.stop("reboot request");
      // The rebuild can fail (then the VM ends and no boot comes): do not wait forever.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([booted, new Promise((r) => timer = setTimeout(r, 30_000))]);
      clearTimeout(timer);
    });
  }

  /**
   * Moves the guest to another host through the daemon's relay (POST /vm/migrate-send);
   * once it runs there this VMM ends as destroyed. A failure leaves it running here, or
   * paused when the outcome is unknown (the error says so).
   */
  migrateSend(request: MigrateSendRequest): Promise<MigrationResult> {
    return this.#serializedValue(async () => {
      const machine = this.#requireMachine("migrate");
      const abort = new AbortController();
      this.#migration = abort;
      const log = (line: string) => this.#hub.log(line);
      const migrating = migrateOut(machine, this.#config, this.#kvm, request, abort.signal, log);
      this.#saving = migrating; // a destroy meanwhile waits before it unmaps guest RAM
      try {
        const result = await migrating;
        this.destroy("migrated to another host");
        return result;
      } catch (error) {
        if (error instanceof MigrationOutcomeUnknownError) this.#paused = true;
        this.#hub.log(`migration failed: ${message(error)}`);
        throw error;
      } finally {
        this.#saving = undefined;
        this.#migration = undefined;
      }
    });
  }

  /** Aborts an outgoing migration before its switch-over; whether one was under way. */
  abortMigration(): boolean {
    this.#migration?.abort();
    return this.#migration !== undefined;
  }

  /** Stops the VM now; `run()` then settles with a "destroyed" record. */
  destroy(source: string): void {
    this.#destroySource ??= source;
    this.#hostStop = { kind: "destroy", source };
    this.#machine?.stop(source);
  }

  /** Sets the balloon size (`targetBytes` of guest RAM taken back from the guest). */
  setBalloon(targetBytes: unknown): Promise<VmmStatus> {
    return this.#serialized(() => {
      const balloon = this.#requireMachine("set the balloon").devices.balloon;
      if (!balloon) {
        throw new ApiError("conflict", "this domain has no balloon; define it with balloon: true");
      }
      const max = this.#config.memoryBytes;
      if (
        typeof targetBytes !== "number" || !Number.isSafeInteger(targetBytes) || targetBytes < 0 ||
        targetBytes > max
      ) {
        throw new ApiError(
          "invalid",
          `targetBytes: must be a whole number of bytes from 0 to ${max}`,
        );
      }
      try {
        balloon.setTarget(Math.floor(targetBytes / PAGE_SIZE));
      } catch (error) {
        if (error instanceof BalloonError) throw new ApiError("invalid", error.message);
        throw error;
      }
      this.#hub.log(`balloon target set to ${targetBytes} bytes`);
    });
  }

  stats(): DomainStats {
    const balloon = this.#machine?.devices.balloon;
    const balloonBytes = (balloon?.inflatedPages ?? 0) * PAGE_SIZE;
    return {
      name: this.#config.name,
      state: this.status().state,
      vcpus: this.#cpuTimes.read(this.#machine?.vcpuStats ?? []).map((cpuTimeNs, index) =>
        cpuTimeNs === undefined ? { index } : { index, cpuTimeNs }
      ),
      memory: {
        guestBytes: this.#config.memoryBytes,
        availableBytes: this.#config.memoryBytes - balloonBytes,
        balloonBytes,
        rssBytes: residentBytes(),
      },
      disks: this.#counters.disks(),
      nics: this.#counters.nics(),
    };
  }

  #requireMachine(what: string) {
    const machine = this.#machine;
    if (machine === undefined || this.#ended || this.#hostStop !== undefined) {
      throw new ApiError("conflict", `Cannot ${what}: the VM is stopping or restarting; retry`);
    }
    return machine;
  }

  #serialized(action: () => void | Promise<void>): Promise<VmmStatus> {
    return this.#serializedValue(async () => {
      await action();
      return this.status();
    });
  }

  #serializedValue<T>(action: () => T | Promise<T>): Promise<T> {
    const next = this.#queue.then(action);
    this.#queue = next.catch(() => {});
    return next;
  }
}

function record(kind: VmmEndRecord["kind"], detail: string): VmmEndRecord {
  return { kind, detail, time: new Date().toISOString() };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
