/**
 * The `denovisor` executable: `deno compile` turns this file into the single binary that
 * is the VMM, the CLI and (later) the daemon and REPL.
 *
 * @module
 */

import { main } from "./cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
