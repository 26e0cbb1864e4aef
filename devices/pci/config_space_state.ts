/**
 * The saved state of one function's configuration space (config_space.ts): what the
 * guest can change in it. Identity, class and the capability layout come from the
 * function's description and are rebuilt from the configuration; the command register,
 * the BARs, cache line size, latency timer, interrupt line, the bodies of writable
 * capabilities, MSI-X and the INTx level are saved.
 *
 * @module
 */

import type { VersionedState } from "../../common/persist.ts";
import type { MsixState } from "./msix.ts";
import type { PciBarState } from "./pci_bars.ts";

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
