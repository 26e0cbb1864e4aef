/**
 * The API's request bodies and the domain definition, written once (common/schema.ts):
 * manager/api_types.ts takes its types from here (`Static<typeof X>`), the OpenAPI
 * document (manager/daemon/openapi_schemas.ts) its schemas, and the daemon's routes and
 * `validateDefinition` their structural checks (`checkSchema`). What needs more than the
 * value (host memory, unicast MACs, paths, clashes between domains) stays in code:
 * manager/domain/ and the routes. Descriptions here are what the OpenAPI document says.
 *
 * @module
 */

import {
  array,
  boolean,
  choice,
  integer,
  literal,
  named,
  number,
  object,
  optional,
  record,
  string,
  union,
  withHints,
} from "../common/schema.ts";
import { CONSOLE_KINDS, IMAGE_FORMATS, LIFECYCLE_ACTIONS, TRANSPORTS } from "../common/enums.ts";
import {
  DISK_SERIAL_RULE,
  EXAMPLE_MAC,
  MAX_DISK_SERIAL_LENGTH,
  OBJECT_NAME_PATTERN,
  OBJECT_NAME_RULE,
} from "../common/validators.ts";
import { SECCOMP_MODES } from "../vmm/sandbox/seccomp_filter.ts";
import { POOL_REQUEST_SCHEMAS } from "../storage/pool/pool_schema.ts";

/** The most vCPUs a domain may have. */
export const MAX_VCPUS = 254;
/** A snapshot's description is one line for `snapshot list`, at most this long. */
export const MAX_SNAPSHOT_DESCRIPTION = 1024;
/** The most clones one request makes. */
export const MAX_CLONES = 100;

const RATE_LIMIT = string({
  description:
    'Token-bucket limit: "bw=10M,ops=1000[,bw_burst=SIZE][,ops_burst=N]" or Firecracker\'s JSON',
  examples: ["bw=10M,ops=1000"],
});
const TRANSPORT = named("Transport", choice(TRANSPORTS));
const LIFECYCLE_ACTION = named("LifecycleAction", choice(LIFECYCLE_ACTIONS));
/** Pool and volume names become file names in pools. */
const STORAGE_NAME = /^[^/.\0][^/\0]{0,254}$/;
const storageName = (kind: string) =>
  string({
    pattern: STORAGE_NAME,
    hints: { invalid: `is not a ${kind} name (1-255 characters, no '/', not starting with '.')` },
  });

/** A disk: a pool volume or a plain path. Exactly one of `volume` (with `pool`) or `path`. */
export const DiskDefinition = named(
  "DiskDefinition",
  object({
    pool: optional(storageName("pool")),
    volume: optional(storageName("volume")),
    path: optional(string({ description: "Absolute host path; exclusive with volume" })),
    format: optional(choice(IMAGE_FORMATS, { description: "Probed from the image when omitted" })),
    readOnly: optional(boolean()),
    serial: optional(string({
      maxLength: MAX_DISK_SERIAL_LENGTH,
      hints: { invalid: `must be ${DISK_SERIAL_RULE}` },
    })),
    transport: optional(TRANSPORT),
    rateLimit: optional(RATE_LIMIT),
    bus: optional(choice(["virtio", "sata"], {
      description: "sata: on the AHCI controller of a firmware boot",
    })),
  }, { description: 'Defaults: pool "default", transport pci, bus virtio' }),
);

/** A NIC: a tap (created by the VMM when "auto"), optionally on a bridge. */
export const NicDefinition = named(
  "NicDefinition",
  object({
    tap: optional(string({ description: 'A tap name, or "auto" (default)' })),
    bridge: optional(string()),
    mac: optional(string({
      pattern: "^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$",
      description: "Generated (52:54:00 prefix, stable per uuid and index) when omitted",
      hints: { invalid: `is not a MAC address; write six hex pairs like ${EXAMPLE_MAC}` },
    })),
    transport: optional(TRANSPORT),
    rateLimit: optional(RATE_LIMIT),
  }),
);

/** Boot a kernel (bzImage, vmlinux or PVH ELF), the embedded demo guest, or firmware. */
export const BootDefinition = named(
  "BootDefinition",
  union([
    object({
      firmware: string({
        description: '"seabios" (Debian\'s SeaBIOS) or the path of a BIOS image',
      }),
      order: optional(
        array(choice(["disk", "cdrom"], { hints: { invalid: 'is not "disk" or "cdrom"' } }), {
          description: "Which boot devices come first (default disk, then cdrom)",
          hints: { conflict: "a kernel boot has no boot order" },
        }),
      ),
    }, { hints: { conflict: "the firmware loads the OS" } }),
    object({
      demo: literal(true, {
        hints: { invalid: "for a kernel give boot.kernel instead" },
      }),
    }, { hints: { conflict: "boot either the demo guest or a kernel" } }),
    object({
      kernel: string({ hints: { missing: 'give a kernel path or "demo": true' } }),
      initrd: optional(string()),
      cmdline: optional(string()),
    }),
  ]),
);

/** Sandbox settings of a domain beyond on and off. */
export const SandboxDefinition = object({
  seccomp: optional(choice(SECCOMP_MODES, {
    description: "The system-call filter: strict (the default), log or off",
  })),
});

/**
 * A domain as the user writes it (docs/domain.md). Sizes are bytes or strings with units
 * ("512M"); a bare number for `memory` is MiB, as in xl.cfg.
 */
export const DomainDefinition = named(
  "DomainDefinition",
  object({
    name: string({
      pattern: OBJECT_NAME_PATTERN,
      hints: {
        missing: "every domain needs a name",
        invalid: `is not a valid name; use ${OBJECT_NAME_RULE}`,
      },
    }),
    uuid: optional(string({ format: "uuid" })),
    vcpus: optional(integer({ minimum: 1, maximum: MAX_VCPUS })),
    memory: optional(union([
      integer({ hints: { expected: 'a whole number of MiB or a size such as "512M"' } }),
      string(),
    ], {
      description: 'A bare number is MiB (as in xl.cfg), at least 16; or a size such as "512M"',
      hints: { expected: 'a number of MiB or a size such as "512M"' },
    })),
    boot: withHints(BootDefinition, { missing: 'give {"kernel": PATH} or {"demo": true}' }),
    disks: optional(array(DiskDefinition)),
    cdroms: optional(array(
      string({ hints: { expected: "an ISO image path" } }),
      { description: "ISO images on AHCI CD-ROM drives (read-only); firmware boot only" },
    )),
    nics: optional(array(NicDefinition)),
    rng: optional(union([boolean(), object({ rateLimit: optional(RATE_LIMIT) })], {
      hints: { expected: 'true, false or {"rateLimit": SPEC}' },
    })),
    balloon: optional(boolean()),
    console: optional(choice(CONSOLE_KINDS, {
      description: "serial (ttyS0, the default) or virtio (hvc0, beside the serial port)",
    })),
    onPoweroff: optional(LIFECYCLE_ACTION),
    onReboot: optional(LIFECYCLE_ACTION),
    onCrash: optional(LIFECYCLE_ACTION),
    autostart: optional(boolean()),
    ha: optional(boolean({ description: "In a farm: restart elsewhere when the host is lost" })),
    placement: optional(object({
      host: optional(string()),
      labels: optional(record(string())),
      antiAffinity: optional(string()),
    }, { description: "In a farm: where start may place the domain" })),
    sandbox: optional(union([boolean(), SandboxDefinition], {
      description: "The VMM's confinement (README, security); false turns it off",
      hints: { expected: 'true, false or {"seccomp": "strict"|"log"|"off"}' },
    })),
    cpu: optional(object({
      weight: optional(integer({ minimum: 1, maximum: 10000, description: "default 100" })),
      max: optional(string({ description: 'A quota such as "50%" of one host CPU' })),
    }, { description: "The VMM's CPU share in its cgroup" })),
  }, { description: "Documented in docs/domain.md; unknown fields are refused" }),
);

/** POST /v1/domains/{name}/{action}: options of start, shutdown, destroy, reboot... */
export const ActionRequest = named(
  "ActionRequest",
  object({
    timeoutSeconds: optional(number({
      description: "shutdown: seconds before the domain is destroyed if the guest ignores " +
        "the request (default 60)",
      hints: { expected: "a number of seconds" },
    })),
    wait: optional(
      boolean({ description: "shutdown, reboot: answer only when done (default true)" }),
    ),
  }),
);

/** virsh's --live, --config and --current: where a change of vCPUs or memory applies. */
const SCOPE = {
  live: optional(boolean({ description: "Change the running guest" })),
  config: optional(boolean({ description: "Change the definition: from the next start" })),
  current: optional(boolean({
    description: "live while the domain runs, config when not (not with live or config)",
  })),
};

/** PUT /v1/domains/{name}/memory (mem-set). */
export const MemoryRequest = named(
  "MemoryRequest",
  object({
    targetBytes: integer({
      minimum: 1,
      description: "live: the balloon target; config: the guest's RAM from its next start " +
        "(a whole number of MiB); default current",
    }),
    ...SCOPE,
  }),
);

/** PUT /v1/domains/{name}/vcpus (vcpu-set). */
export const VcpusRequest = named(
  "VcpusRequest",
  object({
    count: integer({
      minimum: 1,
      maximum: MAX_VCPUS,
      description: "config (the default): from the next start; live is refused (no vCPU hotplug)",
    }),
    ...SCOPE,
  }),
);

/** PUT /v1/domains/{name}/autostart, /v1/pools/{pool}/autostart. */
export const EnabledRequest = named("EnabledRequest", object({ enabled: boolean() }));

/** POST /v1/domains/{name}/save: the domain's state to a file (docs/state-format.md). */
export const SaveRequest = named(
  "SaveRequest",
  object({
    file: string({
      description: "Absolute path of the state file; guest RAM goes to <file>.mem and the " +
        "definition to <file>.domain.json, beside it",
      hints: { missing: "give the absolute path of the state file to write" },
    }),
    keep: optional(boolean({ description: "Leave the domain running (a checkpoint)" })),
  }),
);

/** POST /v1/restore: a new VMM from a saved state. */
export const RestoreRequest = named(
  "RestoreRequest",
  object({
    file: string({
      description: "Absolute path of a state file written by save",
      hints: { missing: "give the absolute path of a state file written by save" },
    }),
    paused: optional(boolean({ description: "Leave the restored domain paused" })),
    name: optional(string({
      description: "Restore as a new domain (new uuid and MACs)",
      hints: { expected: "a domain name" },
    })),
    force: optional(boolean({ description: "Restore although the disks changed" })),
  }),
);

/** POST /v1/domains/{name}/snapshots. */
export const SnapshotCreateRequest = named(
  "SnapshotCreateRequest",
  object({
    name: string(),
    diskOnly: optional(boolean({
      description: "Disks only: the guest's memory is not saved (a revert leaves it shut off)",
    })),
    description: optional(string({
      maxLength: MAX_SNAPSHOT_DESCRIPTION,
      description: "One line for snapshot list",
      hints: {
        invalid: `is longer than ${MAX_SNAPSHOT_DESCRIPTION} characters; keep it to one line`,
      },
    })),
  }),
);

/** POST /v1/domains/{name}/clone. */
export const CloneRequest = named(
  "CloneRequest",
  object({
    name: string({
      description: "The clone's name; with count, clones are <name>-1..<name>-<count>",
      hints: { missing: `give the clone's name (${OBJECT_NAME_RULE})` },
    }),
    count: optional(integer({
      minimum: 1,
      maximum: MAX_CLONES,
      hints: { invalid: `is not a whole number from 1 to ${MAX_CLONES}` },
    })),
    snapshot: optional(string({
      description: "Clone this snapshot (disks and memory); default: the domain as it is now",
    })),
    start: optional(boolean({ description: "Run the clones (default: paused)" })),
  }),
);

/**
 * POST /v1/domains/{name}/migrate: move a running domain to the daemon listening on
 * `dest` (its --migration-listen).
 */
export const MigrateRequest = named(
  "MigrateRequest",
  object({
    dest: string({
      description: "HOST:PORT ([v6]:PORT) of the destination daemon's migration listener",
      hints: { missing: "the destination daemon's HOST:PORT is required" },
    }),
    maxDowntimeMs: optional(integer({
      maximum: 3_600_000,
      description: "Longest pause allowed at the switch-over, in ms (default 100)",
    })),
    bandwidth: optional(
      integer({ description: "Link limit in bytes per second (default 0: none)" }),
    ),
    timeoutS: optional(integer({
      minimum: 1,
      maximum: 7 * 24 * 3600,
      description: "Give up (the domain runs on here) after this many seconds (default 3600)",
    })),
    offline: optional(boolean({ description: "Pause, move, resume: no pre-copy" })),
    wait: optional(boolean({
      description:
        "Answer once it is over (default true); false answers 202 with the first progress",
    })),
  }),
);

/** The schemas of request bodies, for the OpenAPI document (by name). */
export const REQUEST_SCHEMAS = [
  ...POOL_REQUEST_SCHEMAS,
  DomainDefinition,
  ActionRequest,
  MemoryRequest,
  VcpusRequest,
  EnabledRequest,
  SaveRequest,
  RestoreRequest,
  SnapshotCreateRequest,
  CloneRequest,
  MigrateRequest,
] as const;
