/**
 * The daemon's answers about domains and the host, written once (common/schema.ts) as the
 * requests are in api_schema.ts: manager/api_types.ts takes `DomainSummary`, `DomainInfo`,
 * `DomainEvent` and `HostInfo` from here and the OpenAPI document their schemas. Answers
 * are not validated (the daemon makes them); the schema is their type and their contract.
 *
 * @module
 */

import {
  boolean,
  choice,
  external,
  integer,
  named,
  object,
  optional,
  string,
} from "../common/schema.ts";
import { DOMAIN_STATES } from "../common/enums.ts";
import type { MigrationProgress } from "./api_types.ts";
import { DomainDefinition } from "./api_schema.ts";

/** Every kind of domain event (GET /v1/events). */
export const DOMAIN_EVENT_KINDS = [
  "defined",
  "undefined",
  "started",
  "paused",
  "resumed",
  "shutdown",
  "rebooted",
  "crashed",
  "destroyed",
  "stopped",
  "migrating",
  "migrated",
  "migration-failed",
] as const;

const DOMAIN_STATE = named("DomainState", choice(DOMAIN_STATES));

const SUMMARY = {
  name: string(),
  uuid: string({ format: "uuid" }),
  state: DOMAIN_STATE,
  vcpus: integer({ description: "The vCPUs it runs with (while running), else of its next start" }),
  memoryBytes: integer({ description: "Guest RAM it runs with (while running), else its next" }),
  autostart: boolean(),
  persistent: boolean({
    description: "False for a domain made by create without define: it vanishes when it stops",
  }),
  pid: optional(integer({ description: "The VMM process, while there is one" })),
  id: optional(integer({
    description: "The domain id while it runs (xl's domid, virsh's Id): given at each start " +
      "and never given again while the daemon's state directory lives",
  })),
  host: optional(string({
    description: "In a farm: the host running the domain (pid is then that host's, or absent)",
  })),
  next: optional(object({
    vcpus: optional(integer()),
    memoryBytes: optional(integer()),
  }, {
    description: "A running domain's values from its next start where they differ from the " +
      "ones it runs with: after an edit, vcpu-set or mem-set --config",
  })),
};

/** A domain in GET /v1/domains. */
export const DomainSummary = named("DomainSummary", object(SUMMARY));

/** One domain in detail (GET /v1/domains/{name} and the answers of its verbs). */
export const DomainInfo = named(
  "DomainInfo",
  object({
    ...SUMMARY,
    definition: DomainDefinition,
    startedAt: optional(string({
      format: "date-time",
      description: "When the current VMM started",
    })),
    lastEnd: optional(string({
      description: 'Why the last run ended, in words: "guest powered off", "VMM killed by SIGKILL"',
    })),
    consoleSocket: optional(string({
      description: "The VMM's console socket (vmm/vmm_config.ts) while running",
    })),
    logFile: string({
      description: "The file that collects the serial console output and the VMM's log lines",
    }),
    note: optional(string({ description: "A remark on the request just answered" })),
    migration: optional(external<MigrationProgress>("MigrationProgress")),
  }),
);

/** One line of GET /v1/events. */
export const DomainEvent = named(
  "DomainEvent",
  object({
    time: string({ format: "date-time" }),
    domain: string(),
    kind: choice(DOMAIN_EVENT_KINDS),
    detail: optional(string({
      description:
        'Words for people: "guest powered off", "VMM killed by SIGKILL; on_crash=restart"',
    })),
  }),
);

/** GET /v1/host. */
export const HostInfo = named(
  "HostInfo",
  object({
    version: string(),
    hostname: string(),
    cpus: integer(),
    memoryBytes: integer(),
    domainsDefined: integer(),
    domainsRunning: integer(),
    stateDir: string(),
    socket: string(),
  }),
);

/** The answers' schemas, for the OpenAPI document. */
export const ANSWER_SCHEMAS = [DomainSummary, DomainInfo, DomainEvent, HostInfo];
