/**
 * A machine being received: START checked against this VMM's config and this host
 * (RAM layout, every disk on shared storage), guest RAM allocated as anonymous memory
 * and filled by MEMORY frames (so the restored guest does not fault pages in from a
 * file), then the machine built from the STATE document over that RAM, exactly as a
 * restore from a state file does (vmm/builder.ts `restoreLoaded`), and started.
 *
 * The disks are opened only in `restore`, after the source has flushed and closed them
 * (it does so before sending STATE): the image locks are taken here once they are free,
 * and a qcow2 image's metadata is read fresh.
 *
 * @module
 */

import { guestRamRegions } from "../../core/boot/e820.ts";
import { anonymousRam } from "../../core/memory.ts";
import { ANNOUNCE_DELAYS_MS } from "../../devices/net/announce.ts";
import { handedFile } from "../../common/handed_descriptors.ts";
import { closeFd } from "../../ffi/libc.ts";
import { releaseImageLocks } from "../../storage/image_lock.ts";
import type { HostMapping } from "../../ffi/mman.ts";
import { type BuildContext, restoreLoaded } from "../builder.ts";
import type { Machine } from "../machine.ts";
import {
  checkConfigMatch,
  parseDiskIdentities,
  parseSavedConfig,
} from "../snapshot/config_match.ts";
import { checkCpuidCompatible } from "../snapshot/cpuid_check.ts";
import { checkMigratable } from "../snapshot/save_machine.ts";
import {
  checkKvmSections,
  DISKS_SECTION,
  expectedSections,
  matchSections,
} from "../snapshot/machine_sections.ts";
import { checkRamLayout, type HostFacts, hostFacts } from "../snapshot/restore_machine.ts";
import { parseStateDocument } from "../snapshot/state_document.ts";
import type { VmmMachineConfig } from "../vmm_config.ts";
import { checkDiskClaims, configDisks } from "./disk_claims.ts";
import { MIGRATION_PAGE_SIZE, MigrationProtocolError, type PageBlock } from "./protocol.ts";
import type { MigrationTarget } from "./receiver.ts";
import type { StartRequest } from "./start_request.ts";

/** Who starts the restored machine when it is not the target itself. */
export interface MachineHandOff {
  restored(machine: Machine): void;
  /** Settles once the machine runs. */
  started: Promise<void>;
}

/** The destination's side, over this VMM's config. */
export class MachineMigrationTarget implements MigrationTarget {
  readonly #config: VmmMachineConfig;
  readonly #context: BuildContext;
  #host: HostFacts | null = null;
  #mappings: HostMapping[] | null = null;
  #views: Array<{ start: number; bytes: Uint8Array }> = [];
  #machine: Machine | null = null;

  readonly #handOff?: MachineHandOff;

  /**
   * Without `handOff`, `resume` starts the machine itself; with it, the machine is handed
   * to `handOff.restored` and `resume` waits for `handOff.started` (the VMM's domain
   * starts it in its run loop).
   */
  constructor(config: VmmMachineConfig, context: BuildContext, handOff?: MachineHandOff) {
    this.#config = config;
    this.#context = context;
    this.#handOff = handOff;
  }

  /** The machine, once restored. */
  get machine(): Machine | null {
    return this.#machine;
  }

  async accept(start: StartRequest): Promise<void> {
    checkMigratable(this.#config);
    const regions = guestRamRegions(this.#config.memoryBytes);
    const same = regions.length === start.ram.length &&
      regions.every((r, i) =>
        r.start === start.ram[i].guestAddress && r.size === start.ram[i].size
      );
    if (!same) {
      throw new MigrationProtocolError(
        `the source's RAM layout is not this domain's (${this.#config.memoryBytes} bytes)`,
      );
    }
    await checkDiskClaims(start.disks, configDisks(this.#config));
    this.#host = hostFacts(this.#context.kvm);
    // A CPU feature the guest has seen and this host's KVM lacks: refused now, not after
    // the copy (the restore checks every vCPU again).
    if (start.cpuid !== undefined) {
      checkCpuidCompatible(start.cpuid, this.#host.supportedCpuid, 0);
    }
    this.#mappings = anonymousRam(regions);
    this.#views = regions.map((r, i) => ({ start: r.start, bytes: this.#mappings![i].bytes() }));
  }

  writePages(blocks: readonly PageBlock[]): void {
    for (const block of blocks) {
      // decodeMemory kept every block inside the RAM START declared, which is this layout.
      const view = this.#views.find((v) =>
        block.guestAddress >= v.start && block.guestAddress < v.start + v.bytes.length
      )!;
      const offset = block.guestAddress - view.start;
      const length = block.pageCount * MIGRATION_PAGE_SIZE;
      if (block.data) view.bytes.set(block.data, offset);
      else view.bytes.fill(0, offset, offset + length);
    }
  }

  restore(state: unknown): Promise<void> {
    const config = this.#config;
    const host = this.#host!;
    const document = parseStateDocument(state);
    checkConfigMatch(parseSavedConfig(document.config), config);
    checkRamLayout(document.memory.ranges, config.memoryBytes);
    const sections = matchSections(document.sections, expectedSections(config));
    const vcpus = checkKvmSections(sections, config.vcpus, host.support);
    vcpus.forEach((vcpu, index) => checkCpuidCompatible(vcpu.cpuid, host.supportedCpuid, index));
    const disks = parseDiskIdentities(
      sections.get(DISKS_SECTION.id)!.state,
      `${DISKS_SECTION.id}.state`,
    );
    const mappings = this.#mappings!;
    this.#mappings = null; // restoreLoaded takes them over, even when it fails
    // force: the state's st_dev/st_ino are the source host's; START's claims
    // (path, size, head) were checked against this host's view instead.
    this.#machine = restoreLoaded(
      config,
      { document, sections, disks, mappings },
      host,
      this.#context,
      { force: true },
    );
    this.#handOff?.restored(this.#machine);
    return Promise.resolve();
  }

  async resume(): Promise<void> {
    const machine = this.#machine!;
    if (this.#handOff) await this.#handOff.started;
    else machine.start();
    announceNics(machine);
  }

  async abandon(_reason: string): Promise<void> {
    this.#mappings?.forEach((mapping) => mapping.unmap());
    this.#mappings = null;
    const machine = this.#machine;
    this.#machine = null;
    await machine?.close(); // disks closed: the source may take them back
    // A sandboxed VMM's images came from descriptors that stay open with their locks:
    // let go of those too, or the source could not reopen its disks to run on.
    if (machine) {
      for (const disk of this.#config.disks) {
        const handed = handedFile(disk.path);
        if (handed === undefined) continue;
        try {
          releaseImageLocks(handed);
        } finally {
          closeFd(handed);
        }
      }
    }
  }
}

/**
 * The guest runs on a new port of the network: each NIC sends a RARP from its MAC now and
 * a few times more (QEMU's announce-self), so bridges and switches learn where it went
 * without waiting for the guest to speak.
 */
function announceNics(machine: Machine): void {
  const nics = [...machine.devices.entries()].flatMap(([, entry]) =>
    entry.kind === "nic" ? [entry.device] : []
  );
  if (nics.length === 0) return;
  for (const delay of ANNOUNCE_DELAYS_MS) {
    const timer = setTimeout(() => nics.forEach((nic) => nic.announce()), delay);
    Deno.unrefTimer(timer);
  }
}
