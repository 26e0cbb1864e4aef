/**
 * The saved state of one function's configuration space (config_space.ts): what the
 * guest can change in it. Identity, class and the capability layout come from the
 * function's description and are rebuilt from the configuration; the command register,
 * the BARs, cache line size, latency timer, interrupt line, the bodies of writable
 * capabilities, MSI-X and the INTx level are saved.
 *
 * @module
 */

import { StateError, StateReader, type VersionedState } from "../../common/persist.ts";
import { readNullable } from "../state_fields.ts";
import type { Msix, MsixState } from "./msix.ts";
import type { PciBars, PciBarState } from "./pci_bars.ts";
import type { PciFunction } from "./pci_device.ts";
import { PCI_COMMAND_WRITABLE } from "./pci_registers.ts";

/** One function's configuration space as plain JSON. */
export interface PciConfigSpaceState extends VersionedState {
  readonly version: 1;
  /** The command register (only its writable bits). */
  readonly command: number;
  readonly cacheLineSize: number;
  readonly latencyTimer: number;
  readonly interruptLine: number;
  /** Whether the function drives its INTx line (before INTx Disable and MSI-X). */
  readonly intxLevel: boolean;
  readonly bars: readonly PciBarState[];
  /** Per capability of the function, in order: its body (base64) if writable, else null. */
  readonly capabilities: ReadonlyArray<string | null>;
  /** MSI-X, null when the function has none. */
  readonly msix: MsixState | null;
}

/** What a function is handed with `attach`, so that its own state can include it. */
export interface PciConfigPersist {
  save(): PciConfigSpaceState;
  /** Checks a saved state and returns the function that applies it. */
  prepareRestore(state: unknown, path: string): () => void;
}

/** A checked state: the plain fields and the prepared commits of the parts. */
export interface ParsedConfigSpaceState {
  readonly command: number;
  readonly cacheLineSize: number;
  readonly latencyTimer: number;
  readonly interruptLine: number;
  readonly intxLevel: boolean;
  readonly commitBars: () => void;
  /** Writes the saved bodies into the writable capabilities (and tells the function). */
  readonly commitCapabilities: () => void;
  readonly commitMsix?: () => void;
}

/** Checks untrusted state against the function `space` describes; changes nothing. */
export function parseConfigSpaceState(
  state: unknown,
  path: string,
  space: { readonly fn: PciFunction; readonly bars: PciBars; readonly msix?: Msix },
): ParsedConfigSpaceState {
  const r = new StateReader(state, path);
  r.version([1]);
  const command = r.integer("command", 0, 0xffff);
  if ((command & ~PCI_COMMAND_WRITABLE) !== 0) {
    throw new StateError(
      r.fieldPath("command"),
      `bits 0x${(command & ~PCI_COMMAND_WRITABLE).toString(16)} are read-only`,
    );
  }
  const intxLevel = r.boolean("intxLevel");
  if (intxLevel && space.fn.interruptPin === 0) {
    throw new StateError(r.fieldPath("intxLevel"), "the function has no interrupt pin");
  }
  const capabilities = space.fn.capabilities;
  const bodies = r.array("capabilities", capabilities.length, (entry) => entry);
  if (bodies.length !== capabilities.length) {
    throw new StateError(
      r.fieldPath("capabilities"),
      `expected ${capabilities.length} entries, got ${bodies.length}`,
    );
  }
  const writes = capabilities.map((cap, i) => {
    const entryPath = `${r.fieldPath("capabilities")}[${i}]`;
    if (cap.onWrite === undefined) {
      if (bodies[i] !== null) {
        throw new StateError(entryPath, "the capability is read-only; expected null");
      }
      return undefined;
    }
    return new StateReader({ body: bodies[i] }, entryPath).bytes("body", {
      exact: cap.body.length,
    });
  });
  const msix = space.msix;
  const commitMsix = readNullable(r, "msix", (name) => {
    if (msix === undefined) {
      throw new StateError(r.fieldPath(name), "the function has no MSI-X; expected null");
    }
    return msix.prepareRestore(r.raw(name), r.fieldPath(name));
  });
  if (msix !== undefined && commitMsix === undefined) {
    throw new StateError(r.fieldPath("msix"), "is null but the function has MSI-X");
  }
  return {
    command,
    cacheLineSize: r.integer("cacheLineSize", 0, 0xff),
    latencyTimer: r.integer("latencyTimer", 0, 0xff),
    interruptLine: r.integer("interruptLine", 0, 0xff),
    intxLevel,
    commitBars: space.bars.prepareRestore(r.raw("bars"), r.fieldPath("bars")),
    commitCapabilities: () => {
      writes.forEach((body, i) => {
        if (body === undefined) return;
        const cap = capabilities[i];
        cap.body.set(body);
        cap.onWrite?.call(cap, 0, body);
      });
    },
    commitMsix,
  };
}
