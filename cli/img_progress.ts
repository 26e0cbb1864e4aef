/**
 * qemu-img's `-p` progress line: "    (42.00/100%)" rewritten in place on stdout.
 *
 * @module
 */

import type { ProgressCallback } from "../storage/image_ops/scan.ts";

const encoder = new TextEncoder();

/** A progress callback printing qemu-img style progress, at most once per percent. */
export function progressPrinter(
  write = (text: string) => Deno.stdout.writeSync(encoder.encode(text)),
): ProgressCallback {
  let shown = -1;
  return (done, total) => {
    const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
    if (percent === shown) return;
    shown = percent;
    write(`    (${percent.toFixed(2)}/100%)${done >= total ? "\n" : "\r"}`);
  };
}
