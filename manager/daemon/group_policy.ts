/**
 * What a member of the `--socket-group` may do. Members reach the daemon through the
 * group's socket (`api.sock`, 0660); root reaches it through `admin.sock` (0600) beside
 * it, which the CLI prefers when run as root. Without this confinement the group would be
 * root-equivalent (pools on /root, imports of /etc/shadow, exports into
 * /root/.ssh/authorized_keys, /dev/sda as a guest's disk), so requests on the group's
 * socket are allowed by a list, everything else is refused with 403:
 *
 * - reading anything (GET), the lifecycle verbs, tuning, undefine;
 * - domain definitions whose disks are pool volumes (no host paths, no block devices) and
 *   whose other host files (kernel, initrd) lie in a pool or under a `--pool-root`;
 * - pools of type dir or btrfs under a `--pool-root`; building or deleting the directory
 *   of such a pool only;
 * - volume imports from, and exports into, pools and pool roots only.
 *
 * @module
 */

import { dirname, isAbsolute, relative } from "node:path";
import { ApiError } from "../../common/http/mod.ts";
import { readJsonBody } from "../../common/http/json_body.ts";
import type { PoolManager } from "../../storage/pool/mod.ts";

/** What the policy needs from the daemon. */
export interface GroupPolicyContext {
  /** Directories under which members may put pools (`--pool-root`). */
  poolRoots: readonly string[];
  pools: PoolManager;
}

const LIFECYCLE = ["start", "shutdown", "destroy", "reboot", "reset", "pause", "resume"];
/** Pool actions members may take (build has its own rule); a new one is root's until listed. */
const POOL_ACTIONS = ["start", "stop", "refresh", "snapshot", "rollback"];
/** Volume actions members may take: all work inside pools (export is checked). */
const VOLUME_ACTIONS = [
  "wipe",
  "resize",
  "clone",
  "snapshot",
  "rollback",
  "commit",
  "delete-snapshot",
  "convert",
  "export",
];

/**
 * Returns the request to serve (with its body re-made when it was read to be checked), or
 * throws a 403 `ApiError` that says what members may not do and what they may.
 */
export async function confineGroupRequest(
  request: Request,
  context: GroupPolicyContext,
): Promise<Request> {
  if (request.method === "GET" || request.method === "HEAD") return request;
  const url = new URL(request.url);
  // Decoded as the router decodes them, so that "bui%6Cd" is judged as the "build" it is.
  let path: string[];
  try {
    path = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    throw refused(`${request.method} ${url.pathname}`);
  }
  const [v1, collection, name, sub, , action] = path;
  if (v1 !== "v1") return request; // Not an API path: the router answers 404.
  const body = () => readJsonBody(request);
  const again = (value: unknown) =>
    new Request(request.url, {
      method: request.method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(value),
    });

  if (collection === "domains") {
    if (path.length <= 3 && (request.method === "POST" || request.method === "PUT")) {
      const definition = await body();
      checkDefinition(definition, context);
      return again(definition);
    }
    if (path.length === 3 && request.method === "DELETE") return request;
    if (path.length === 4 && request.method === "POST" && LIFECYCLE.includes(sub)) return request;
    if (path.length === 4 && request.method === "PUT") return request; // memory, vcpus, autostart
    throw refused(`${request.method} ${url.pathname}`);
  }
  if (collection === "pools") {
    if (path.length === 2 && request.method === "POST") {
      const definition = await body();
      checkPoolDefinition(definition, context);
      return again(definition);
    }
    if (path.length === 3 && request.method === "DELETE") {
      if (url.searchParams.has("delete")) {
        requirePoolUnderRoot(name, context, "delete the directory of");
      }
      return request;
    }
    if (path.length === 4 && request.method === "PUT") return request; // autostart
    if (path.length === 4 && request.method === "POST" && sub === "build") {
      requirePoolUnderRoot(name, context, "build");
      return request;
    }
    if (path.length === 4 && request.method === "POST" && POOL_ACTIONS.includes(sub)) {
      return request;
    }
    if (path.length === 4 && sub === "volumes" && request.method === "POST") {
      const create = await body() as { import?: unknown };
      if (create?.import !== undefined) {
        requireInside(create.import, context, "import", "import from", true);
      }
      return again(create);
    }
    if (path.length === 5 && sub === "volumes" && request.method === "DELETE") return request;
    if (
      path.length === 6 && sub === "volumes" && request.method === "POST" &&
      VOLUME_ACTIONS.includes(action)
    ) {
      const actionBody = await body() as { target?: unknown };
      if (action === "export") {
        requireInside(actionBody?.target, context, "target", "export into", false);
      }
      return again(actionBody);
    }
  }
  throw refused(`${request.method} ${url.pathname}`);
}

function refused(what: string): ApiError {
  return new ApiError(
    "forbidden",
    `${what} is for root only; members of the socket group may read, run the lifecycle ` +
      `verbs, define domains on pool volumes and manage pools under the pool roots`,
  );
}

/** Disks only as volumes; every other absolute path inside the pools or pool roots. */
function checkDefinition(definition: unknown, context: GroupPolicyContext): void {
  if (typeof definition !== "object" || definition === null) return; // The router says why.
  const disks = (definition as { disks?: unknown }).disks;
  if (Array.isArray(disks)) {
    disks.forEach((disk, index) => {
      if (typeof disk === "object" && disk !== null && "path" in disk) {
        throw new ApiError(
          "forbidden",
          `disks[${index}].path: members of the socket group give disks as pool volumes ` +
            `({ "pool": ..., "volume": ... }), not as host paths`,
        );
      }
    });
  }
  walk(definition, "", (value, field) => {
    if (field.endsWith("cmdline") || !value.startsWith("/")) return;
    requireInside(value, context, field, "use", true);
  });
}

function walk(value: unknown, field: string, visit: (text: string, field: string) => void): void {
  if (typeof value === "string") visit(value, field);
  else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${field}[${i}]`, visit));
  else if (typeof value === "object" && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      walk(v, field === "" ? key : `${field}.${key}`, visit);
    }
  }
}

function checkPoolDefinition(definition: unknown, context: GroupPolicyContext): void {
  const pool = definition as { type?: unknown; path?: unknown };
  if (pool?.type !== "dir" && pool?.type !== "btrfs") {
    throw new ApiError(
      "forbidden",
      `type: members of the socket group may define pools of type dir or btrfs only`,
    );
  }
  if (typeof pool.path !== "string" || !isAbsolute(pool.path)) return; // The pool layer says why.
  if (!underAny(realParent(pool.path), context.poolRoots, true)) {
    throw new ApiError(
      "forbidden",
      `path: ${pool.path} is not under a pool root (${listRoots(context)}); members of the ` +
        `socket group put pools there only`,
    );
  }
}

function requirePoolUnderRoot(name: string, context: GroupPolicyContext, verb: string): void {
  const info = context.pools.list().find((pool) => pool.name === name);
  if (info === undefined) return; // The pool layer answers 404.
  if (info.type === "block" || !underAny(realParent(info.path), context.poolRoots, true)) {
    throw new ApiError(
      "forbidden",
      `Members of the socket group may ${verb} pools under a pool root only ` +
        `(${listRoots(context)}); pool '${name}' is at ${info.path}`,
    );
  }
}

/** `value` must be an absolute path inside a pool's directory or a pool root. */
function requireInside(
  value: unknown,
  context: GroupPolicyContext,
  field: string,
  verb: string,
  mustExist: boolean,
): void {
  if (typeof value !== "string" || !isAbsolute(value)) return; // The layer below says why.
  let real: string;
  try {
    real = mustExist ? Deno.realPathSync(value) : realParent(value);
  } catch {
    return; // Missing: the layer below says so.
  }
  const dirs = [
    ...context.poolRoots,
    ...context.pools.list().filter((p) => p.type !== "block").map((p) => p.path),
  ];
  if (!underAny(real, dirs, false)) {
    throw new ApiError(
      "forbidden",
      `${field}: members of the socket group may ${verb} files in the pools or under a ` +
        `pool root only (${listRoots(context)}), not ${value}`,
    );
  }
  if (mustExist && !Deno.statSync(real).isFile) {
    throw new ApiError("forbidden", `${field}: ${value} is not a regular file`);
  }
}

/** The path with its parent directory's symlinks resolved (the file may not exist yet). */
function realParent(path: string): string {
  const parent = dirname(path);
  let real: string;
  try {
    real = Deno.realPathSync(parent);
  } catch {
    real = parent;
  }
  return `${real}/${path.slice(parent.length + 1)}`;
}

/** Whether `path` lies strictly under one of `dirs` (or is one of them, when `orEqual`). */
function underAny(path: string, dirs: readonly string[], orEqual: boolean): boolean {
  return dirs.some((dir) => {
    let root: string;
    try {
      root = Deno.realPathSync(dir);
    } catch {
      return false;
    }
    const rest = relative(root, path);
    if (rest === "") return orEqual;
    return !rest.startsWith("..") && !isAbsolute(rest);
  });
}

function listRoots(context: GroupPolicyContext): string {
  return context.poolRoots.length > 0
    ? context.poolRoots.join(", ")
    : "none: the daemon was started without --pool-root";
}
