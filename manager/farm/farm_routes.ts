/**
 * The farm's API routes, added before the domain routes so that, in a farm, defining,
 * editing, undefining and starting a domain go through etcd (first match wins in the
 * router): definitions are stored farm-wide, a start claims the domain's owner key (409
 * when another host runs it) and may be placed on another host (`?host=auto|NAME`).
 *
 * @module
 */

import { ApiError, jsonResponse, readJsonBody, type Router } from "../../common/http/mod.ts";
import type { DomainDefinition } from "../api_types.ts";
import type { FarmMember } from "./farm_member.ts";
import { defineInFarm } from "./farm_definitions.ts";
import type { FarmStatus } from "./farm_api.ts";
import { place } from "./placement.ts";
import { addFarmHostRoutes, farmHosts, liveHost } from "./farm_host_routes.ts";
import { addForwardRoutes } from "./farm_forward.ts";

/**
 * Adds /v1/farm/... and the farm's domain routes to `router`; `local` answers a request
 * with this host's own domain routes (a shutdown or destroy of a domain running here).
 */
export function addFarmRoutes(
  router: Router,
  member: FarmMember,
  local: (request: Request) => Promise<Response>,
): void {
  const { domains, store } = member;
  router.add("GET", "/v1/farm", async () => {
    const [etcd, endpoints, hosts, owners] = await Promise.all([
      store.etcd.status(),
      store.etcd.endpointHealth?.(),
      farmHosts(store, true),
      store.owners(),
    ]);
    const status: FarmStatus = {
      ...member.settings,
      etcd: { ...etcd, ...(endpoints ? { endpoints } : {}) },
      fenced: member.fenced,
      hosts,
      owners: owners.map((o) => ({ domain: o.domain, ...o.owner })),
    };
    return jsonResponse(status);
  });
  router.add("GET", "/v1/farm/events", async ({ url }) => {
    const limit = Number(url.searchParams.get("limit") ?? "100");
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
      throw new ApiError("invalid", `?limit=${url.searchParams.get("limit")}: expected 1 to 10000`);
    }
    return jsonResponse(await store.events(limit));
  });
  addFarmHostRoutes(router, member, local);
  addForwardRoutes(router, member, local);
  member.local = local;

  // Listings come from this host's table and the owners its last reconcile saw (no etcd
  // call: they work while etcd is unreachable); a domain running elsewhere shows as
  // running, on its host.
  router.add("GET", "/v1/domains", async () => {
    await domains.settled();
    return jsonResponse(
      domains.list().map((summary) => {
        const host = member.owners.get(summary.name) ??
          (summary.state === "shutoff" ? undefined : member.host);
        if (host === undefined) return summary;
        const elsewhere = host !== member.host && summary.state === "shutoff";
        const state = (member.remoteStates.get(summary.name) ?? "running") as typeof summary.state;
        return { ...summary, host, ...(elsewhere ? { state } : {}) };
      }),
    );
  });

  // The domain routes that change farm state.
  router.add("POST", "/v1/domains", async ({ request, url }) => {
    const body = await readJsonBody(request);
    const transient = flag(url, "transient");
    if (transient) {
      // Not stored farm-wide; reconcile claims its owner key once it runs.
      return jsonResponse(await domains.define(body, { start: true, transient: true }), 201);
    }
    const info = await domains.define(body);
    try {
      await defineInFarm(member, info.definition);
    } catch (error) {
      await domains.undefine(info.name).catch(() => {});
      throw error;
    }
    await store.event({ host: member.host, kind: "defined", domain: info.name });
    if (!flag(url, "start")) return jsonResponse(domains.info(info.name), 201);
    try {
      return jsonResponse(await member.startHere(info.name), 201);
    } catch (error) {
      // As without a farm: a definition that could not start is not kept.
      await domains.undefine(info.name).catch(() => {});
      await store.deleteDefinition(info.name).catch(() => {});
      throw error;
    }
  });
  router.add("PUT", "/v1/domains/:name", async ({ request, params }) => {
    const info = await domains.edit(params.name, await readJsonBody(request));
    if (info.persistent) {
      await store.putDefinition(info.definition);
      await store.event({
        host: member.host,
        kind: "defined",
        domain: info.name,
        detail: "edited",
      });
    }
    return jsonResponse(info);
  });
  router.add("DELETE", "/v1/domains/:name", async ({ params }) => {
    const owner = await store.owner(params.name);
    if (owner !== undefined && owner.owner.host !== member.host) {
      throw new ApiError(
        "conflict",
        `Domain '${params.name}' runs on host '${owner.owner.host}'; stop it there first`,
      );
    }
    await domains.undefine(params.name);
    await store.deleteDefinition(params.name);
    await store.event({ host: member.host, kind: "undefined", domain: params.name });
    return new Response(null, { status: 204 });
  });
  // Stopping a domain that runs on another host: that host does it, through an intent.
  for (const action of ["shutdown", "destroy"] as const) {
    router.add("POST", `/v1/domains/:name/${action}`, async ({ request, params }) => {
      const name = params.name;
      const here = domains.get(name).run !== undefined;
      const owner = here ? undefined : await store.owner(name);
      if (owner === undefined || owner.owner.host === member.host) {
        const answer = await local(request);
        // Stopped now (a destroy, a quick shutdown): its capacity is free for placement
        // at once, not at the next reconciles. Best effort; reconcile releases it anyway.
        if (answer.ok && domains.get(name).run === undefined) {
          await member.release(name).catch(() => {});
        }
        return answer;
      }
      await member.intents.request(
        name,
        "",
        `${action} asked on '${member.host}'`,
        owner.owner.host,
        action,
      );
      return jsonResponse({
        ...domains.info(name),
        host: owner.owner.host,
        note: `${action === "shutdown" ? "shut down" : "destroyed"} on host '${owner.owner.host}'`,
      });
    });
  }
  router.add("POST", "/v1/domains/:name/start", async ({ request, params, url }) => {
    await readJsonBody(request); // Start takes no options; the body may be {} or empty.
    const name = params.name;
    const definition: DomainDefinition = domains.info(name).definition;
    const owner = await store.owner(name);
    if (owner !== undefined) {
      throw new ApiError("conflict", `Domain '${name}' already runs on host '${owner.owner.host}'`);
    }
    // Without a host: placed, this host first when it qualifies (capacity, maintenance,
    // labels, anti-affinity, pools), so no host is ever overcommitted by a plain start.
    const choice = url.searchParams.get("host") ?? definition.placement?.host;
    let target = choice ?? member.host;
    let reason = "asked for";
    if (choice === undefined) {
      ({ host: target, reason } = place(definition, await store.view(), { prefer: member.host }));
    } else if (choice === "auto") {
      ({ host: target, reason } = place(definition, await store.view()));
    } else if (choice !== member.host) {
      await liveHost(store, choice);
    }
    if (target === member.host) return jsonResponse(await member.startHere(name));
    await member.intents.request(name, target, reason);
    return jsonResponse({
      ...domains.info(name),
      state: "running",
      host: target,
      note: `started on host '${target}' (${reason})`,
    });
  });
}

function flag(url: URL, name: string): boolean {
  const value = url.searchParams.get(name);
  if (value === null || value === "0" || value === "false") return false;
  if (value === "" || value === "1" || value === "true") return true;
  throw new ApiError("invalid", `?${name}=${value}: expected 1 or 0`);
}
