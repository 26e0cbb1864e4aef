/**
 * `denovisor clone DOMAIN NEW [--count N] [--snapshot NAME] [--start]`: new domains from
 * a running (or shut-off) domain or one of its snapshots, sharing its memory file
 * copy-on-write and standing on linked clones of its disks.
 *
 * @module
 */

import type { CloneRequest, DomainInfo } from "../manager/api_types.ts";
import { domainPath, type DomainVerb, stringOption } from "./domain_verb.ts";
import { CLIENT_EXIT, formatJson, printable } from "./output.ts";
import { UsageError } from "./usage_error.ts";

const clone: DomainVerb = {
  name: "clone",
  summary: "New domains from a domain or its snapshot (linked disks, shared memory)",
  help: `Usage: denovisor clone DOMAIN NEW [--count N] [--snapshot NAME] [--start] [--json]

Makes NEW (or NEW-1 .. NEW-N with --count) from DOMAIN as it is now, or from its
snapshot NAME: new uuids and MAC addresses, each writable disk a linked clone (a qcow2
overlay, NEW-vda...) of one copy of the source's (NEW-base-vda... when there are several
clones), in the source's pools. A running source is paused for the copy; the clones
restore its memory, mapping one memory file copy-on-write, and start paused.

Options:
  --count N         How many clones (1-100), named NEW-1 .. NEW-N
  --snapshot NAME   Clone this snapshot of DOMAIN (disks, and memory if it has some)
  --start           Run the clones instead of leaving them paused (a clone without
                    memory then boots)
  --json            Print the clones' info as JSON

Example:
  denovisor clone web web-test --count 3 --snapshot before-upgrade --start`,
  options: {
    count: { type: "string" },
    snapshot: { type: "string" },
    start: { type: "boolean" },
  },
  json: true,
  args: ["domain", "name"],
  async run(context, values, [domain, name]) {
    const body: CloneRequest = { name };
    const count = stringOption(values, "count");
    if (count !== undefined) {
      if (!/^\d+$/.test(count) || Number(count) < 1 || Number(count) > 100) {
        throw new UsageError(
          `clone --count: expected a whole number from 1 to 100, got '${count}'`,
        );
      }
      body.count = Number(count);
    }
    const snapshot = stringOption(values, "snapshot");
    if (snapshot !== undefined) body.snapshot = snapshot;
    if (values.start) body.start = true;
    const clones = await context.client.post<DomainInfo[]>(domainPath(domain, "/clone"), body);
    if (values.json) {
      context.io.out(formatJson(clones));
      return CLIENT_EXIT.OK;
    }
    for (const info of clones) {
      context.io.out(
        `Domain '${printable(info.name)}' cloned from '${printable(domain)}' (${info.state})`,
      );
    }
    return CLIENT_EXIT.OK;
  },
};

/** clone. */
export const CLONE_VERBS: DomainVerb[] = [clone];
