/**
 * qemu-img and qemu-io as the judges of the image operations' tests: run a tool, keep its
 * status and all its output for the assertion messages.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Runs `command args`; its status and its standard output followed by its standard error. */
export function runTool(command: string, ...args: string[]): { code: number; output: string } {
  const r = new Deno.Command(command, { args }).outputSync();
  const decoder = new TextDecoder();
  return { code: r.code, output: decoder.decode(r.stdout) + decoder.decode(r.stderr) };
}

/** Runs `command args`, asserting that it succeeds; returns its output. */
export function toolOk(command: string, ...args: string[]): string {
  const r = runTool(command, ...args);
  assert.equal(r.code, 0, `${command} ${args.join(" ")}: ${r.output}`);
  return r.output;
}
