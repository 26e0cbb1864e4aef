/**
 * The `denovisor` executable: `deno compile` turns this file into the single binary that
 * is the VMM, the CLI and (later) the daemon and REPL.
 *
 * @module
 */

if (import.meta.main) {
  // A VMM process (one per running domain) loads only the VMM's modules, not the CLI's.
  const [verb, ...rest] = Deno.args;
  if (verb === "vmm") Deno.exit(await (await import("./cli/vmm_main.ts")).vmmMain(rest));
  Deno.exit(await (await import("./cli/main.ts")).main(Deno.args));
}
