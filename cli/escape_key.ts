/**
 * `--escape KEY` of `run` and `console`: the control key that ends `run`'s VM (KEY x) or
 * detaches `console` (KEY alone), written `^]`, `^A`, `ctrl-]` or `C-a`.
 *
 * @module
 */

import { parseEscapeKey } from "../devices/console/escape_filter.ts";
import { UsageError } from "./usage_error.ts";

/** The byte of `--escape KEY`, or `fallback` without the option; a bad KEY is a usage error. */
export function escapeOption(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const byte = parseEscapeKey(text);
  if (byte === undefined) {
    throw new UsageError(
      `--escape: '${text}' is not a control key; write it as ^] or ^A (not ^C, ^M, ^I, ^H, ^[ or ^@)`,
    );
  }
  return byte;
}
