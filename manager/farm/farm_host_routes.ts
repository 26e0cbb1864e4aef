/**
 * The farm's host routes (`denovisor host ...`) and the farm's `migrate`:
 *
 *   GET    /v1/farm/hosts[?all=1]          live hosts (all=1: down members too)
 *   GET    /v1/farm/hosts/{host}           FarmHostInfo: the host, its domains, its events
 *   PUT    /v1/farm/hosts/{host}/maintenance { enabled }
 *   POST   /v1/farm/hosts/{host}/evacuate[?progress=1]  every domain moved away
 *                                           (progress=1: NDJSON, a line per step)
 *   DELETE /v1/farm/hosts/{host}           forget a host that is down and runs nothing
 *   POST   /v1/domains/{name}/migrate       from any host; dest a host, its listener or none
 *
 * @module
 */

import { ApiError, jsonResponse, readJsonBody, type Router } from "../../common/http/mod.ts";
import { requestObject } from "../../common/http/json_body.ts";
import type { FarmMember } from "./farm_member.ts";
import type { FarmHost, FarmHostInfo } from "./farm_api.ts";
import { hostLoads, place } from "./placement.ts";
import type { FarmStore } from "./farm_store.ts";
import { migrationAddress } from "./farm_live_move.ts";
import { parseMigrateRequest } from "../daemon/migration_ops.ts";
import type { EvacuationStep } from "./farm_ha.ts";

const MIGRATE_FIELDS = ["dest", "maxDowntimeMs", "bandwidth", "timeoutS", "offline", "wait"];

/** Adds the host routes and the farm's migrate to `router`. */
export function addFarmHostRoutes(
  router: Router,
  member: FarmMember,
  local: (request: Request) => Promise<Response>,
): void {
  const { store } = member;
  router.add("GET", "/v1/farm/hosts", async ({ url }) => {
    const hosts = await farmHosts(store, url.searchParams.get("all") === "1");
    return jsonResponse(hosts);
  });
  router.add("GET", "/v1/farm/hosts/:host", async ({ params }) => {
    const host = (await farmHosts(store, true)).find((h) => h.name === params.host);
    if (host === undefined) throw unknownHost(params.host);
    const events = (await store.events(1000)).filter((e) =>
      e.host === host.name || e.detail?.includes(`'${host.name}'`) || e.detail === host.name
    ).slice(-10);
    const owners = (await store.owners()).filter((o) => o.owner.host === host.name);
    const info: FarmHostInfo = {
      ...host,
      running: owners.map((o) => ({
        domain: o.domain,
        since: o.owner.since,
        ...(o.owner.detached ? { detached: true } : {}),
      })),
      events,
    };
    return jsonResponse(info);
  });
  router.add("PUT", "/v1/farm/hosts/:host/maintenance", async ({ request, params }) => {
    const body = await readJsonBody(request) as { enabled?: unknown };
    if (typeof body?.enabled !== "boolean") {
      throw new ApiError("invalid", 'The body must be {"enabled": true} or {"enabled": false}');
    }
    await liveHost(store, params.host);
    await store.setMaintenance(params.host, body.enabled);
    await store.event({
      host: member.host,
      kind: body.enabled ? "maintenance-on" : "maintenance-off",
      detail: params.host,
    });
    return jsonResponse((await farmHosts(store)).find((h) => h.name === params.host));
  });
  router.add("POST", "/v1/farm/hosts/:host/evacuate", async ({ params, url }) => {
    if (url.searchParams.get("progress") !== "1") {
      return jsonResponse(await member.ha.evacuate(params.host));
    }
    await liveHost(store, params.host); // A 404 before the stream starts.
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (step: EvacuationStep | { error: string }) =>
          controller.enqueue(encoder.encode(JSON.stringify(step) + "\n"));
        member.ha.evacuate(params.host, send).then(
          () => controller.close(),
          (error) => {
            send({ error: (error as Error).message });
            controller.close();
          },
        );
      },
    });
    return new Response(body, {
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-store" },
    });
  });
  router.add("DELETE", "/v1/farm/hosts/:host", async ({ params }) => {
    const name = params.host;
    if (await store.liveHost(name)) {
      throw new ApiError(
        "conflict",
        `Host '${name}' is up; evacuate it ('denovisor host evacuate ${name}'), stop its ` +
          `daemon, then remove it`,
      );
    }
    const members = await store.members();
    if (!members.some((m) => m.name === name)) throw unknownHost(name);
    const running = (await store.owners()).filter((o) => o.owner.host === name);
    if (running.length > 0) {
      throw new ApiError(
        "conflict",
        `Host '${name}' still runs ${running.map((o) => `'${o.domain}'`).join(", ")} (its ` +
          `daemon stopped and left them running); start its daemon and evacuate it first`,
      );
    }
    await store.removeMember(name);
    await store.event({ host: member.host, kind: "removed", detail: name });
    return new Response(null, { status: 204 });
  });

  // migrate from any host: the owner migrates it, to DEST (a host of the farm or its
  // migration listener) or, without DEST, to the host placement picks; the owner key
  // moves with it. A DEST outside the farm is a plain migration by the owner.
  router.add("POST", "/v1/domains/:name/migrate", async ({ request, params }) => {
    const name = params.name;
    const body = requestObject(await readJsonBody(request), MIGRATE_FIELDS);
    const { dest, wait: _wait, ...live } = body;
    // The options, checked as the owner will check them (400 before anything moves).
    parseMigrateRequest({ ...live, dest: "127.0.0.1:1" });
    if (dest !== undefined && typeof dest !== "string") {
      throw new ApiError("invalid", "dest: expected a host name or HOST:PORT");
    }
    const owner = await store.owner(name);
    const here = member.domains.entries().some((e) =>
      e.definition.name === name && e.run !== undefined
    );
    if (owner === undefined && !here) {
      throw new ApiError("conflict", `Domain '${name}' is not running on any host of the farm`);
    }
    const from = owner?.owner.host ?? member.host;
    const view = await store.view();
    let to: string | undefined;
    let reason = "asked for";
    if (dest === undefined) {
      const definition = view.definitions.get(name);
      if (definition === undefined) {
        throw new ApiError(
          "invalid",
          `Domain '${name}' has no farm definition (transient): give the destination`,
        );
      }
      ({ host: to, reason } = place(definition, view, { exclude: [from] }));
    } else {
      to = view.hosts.find((h) => h.name === dest)?.name ??
        view.hosts.find((h) => migrationAddress(h) === dest || h.migrationListen === dest)?.name;
    }
    if (to === undefined) {
      if (from === member.host) return await local(rebuilt(request, body));
      throw new ApiError(
        "conflict",
        `Domain '${name}' runs on host '${from}' and '${dest}' is not a host of the farm; ` +
          `run this migrate on '${from}'`,
      );
    }
    if (to === from) throw new ApiError("conflict", `Domain '${name}' already runs on '${to}'`);
    for (const host of [from, to]) {
      const record = view.hosts.find((h) => h.name === host);
      if (record !== undefined && migrationAddress(record) === undefined) {
        throw new ApiError(
          "conflict",
          `Host '${host}' has no migration listener (daemon --migration-listen ADDR:PORT); ` +
            `'denovisor host evacuate' stops and starts such domains instead`,
        );
      }
    }
    const intent = await member.intents.request(
      name,
      to,
      reason,
      from,
      undefined,
      live as NonNullable<Parameters<typeof member.intents.request>[5]>,
    );
    return jsonResponse({
      ...(intent.result as Record<string, unknown> ?? { domain: name }),
      host: to,
      from,
      reason,
    });
  });
}

/** The hosts with their load and state; `all` adds the members that are down. */
export async function farmHosts(store: FarmStore, all = false): Promise<FarmHost[]> {
  const [view, members] = await Promise.all([store.view(), all ? store.members() : []]);
  const loads = hostLoads(view);
  const up: FarmHost[] = view.hosts.map((host) => {
    const load = loads.get(host.name)!;
    const maintenance = view.maintenance.has(host.name);
    return {
      ...host,
      state: maintenance ? "maintenance" : "up",
      maintenance,
      freeMemoryBytes: load.freeMemoryBytes,
      freeVcpus: load.freeVcpus,
      domains: load.domains.sort(),
    };
  });
  const down: FarmHost[] = members.filter((m) => !up.some((h) => h.name === m.name)).map((
    host,
  ) => ({
    ...host,
    state: "down",
    maintenance: view.maintenance.has(host.name),
    freeMemoryBytes: 0,
    freeVcpus: 0,
    domains: [...view.owners].filter(([, h]) => h === host.name).map(([d]) => d).sort(),
  }));
  return [...up, ...down].sort((a, b) => a.name.localeCompare(b.name));
}

/** Throws a 404 unless `host` is up. */
export async function liveHost(store: FarmStore, host: string): Promise<void> {
  if (!(await store.liveHost(host))) {
    throw new ApiError(
      "not_found",
      `No live host '${host}' in the farm; 'denovisor host list' (or 'farm hosts') lists them`,
    );
  }
}

function unknownHost(host: string): ApiError {
  return new ApiError(
    "not_found",
    `No host '${host}' in the farm; 'denovisor host list' lists them`,
  );
}

/** `request` again with `body` (the original's body was read). */
function rebuilt(request: Request, body: unknown): Request {
  return new Request(request.url, {
    method: request.method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}
