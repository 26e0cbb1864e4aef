/**
 * Fault injection for crash tests: `DENOVISOR_FAULT=<point>` in the environment makes the
 * process kill itself with SIGKILL when it reaches `faultPoint("<point>")`, so a test can
 * stop a multi-step pool operation exactly in its dangerous window (as kill -9 would) and
 * check what the next start recovers. Points: `snapshot-after-rename` (the volume moved
 * to its snapshot, the overlay not yet in place), `clone-before-rename` (a full copy
 * written under its temporary name), `delete-snapshot-after-copy` (a snapshot's child
 * committed into it, or flattened, but not yet renamed into place), `rollback-after-rename`
 * (the fresh overlay in place, the newer snapshots still recorded).
 *
 * @module
 */

let point: string | undefined | null = null;

/** Dies here (SIGKILL) when `DENOVISOR_FAULT` names `name`; otherwise does nothing. */
export function faultPoint(name: string): void {
  if (point === null) {
    try {
      point = Deno.env.get("DENOVISOR_FAULT");
    } catch {
      point = undefined; // no env permission: no fault injection
    }
  }
  if (point === name) Deno.kill(Deno.pid, "SIGKILL");
}
