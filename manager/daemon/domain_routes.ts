/**
 * The domain routes of the API (manager/api_types.ts): request parsing and validation at
 * the edge, then the domain table and the lifecycle do the work.
 *
 * @module
 */

import type { ActionRequest, HostInfo } from "../api_types.ts";
import * as schema from "../api_schema.ts";
import type { DenovisorPaths } from "../paths.ts";
import { VERSION } from "../../common/version.ts";
import {
  ApiError,
  CONSOLE_PROTOCOL,
  jsonResponse,
  parseRequest,
  readJsonBody,
  relay,
  type Router,
  upgradeResponse,
} from "../../common/http/mod.ts";
import type { DomainEntry } from "./domain_entry.ts";
import type { DomainManager } from "./domains.ts";
import type { EventHub } from "./events.ts";
import { LOG_EARLIER_HEADER, readLogTail } from "./log_tail.ts";

/** The actions of POST /v1/domains/{name}/{action}. */
export const DOMAIN_ACTIONS = [
  "start",
  "shutdown",
  "destroy",
  "reboot",
  "reset",
  "pause",
  "resume",
] as const;
type Action = typeof DOMAIN_ACTIONS[number];
const MAX_LOG_LINES = 10_000;

/** Adds the host, domain and event routes to `router`. */
export function addDomainRoutes(
  router: Router,
  domains: DomainManager,
  events: EventHub,
  paths: DenovisorPaths,
): void {
  router.add("GET", "/v1/host", () => jsonResponse(hostInfo(domains, paths)));
  // Listings wait for the start-up re-attach, so that they never show a running domain
  // as shut off (a request for one domain waits on that domain's lock instead).
  router.add("GET", "/v1/domains", async () => {
    await domains.settled();
    return jsonResponse(domains.list());
  });
  router.add("POST", "/v1/domains", async ({ request, url }) => {
    const body = await readJsonBody(request);
    const transient = flag(url, "transient");
    const info = await domains.define(body, { start: flag(url, "start") || transient, transient });
    return jsonResponse(info, 201);
  });
  router.add("GET", "/v1/domains/:name", async ({ params }) => {
    await domains.settled();
    return jsonResponse(domains.info(params.name));
  });
  router.add("PUT", "/v1/domains/:name", async ({ request, params }) => {
    return jsonResponse(await domains.edit(params.name, await readJsonBody(request)));
  });
  router.add("DELETE", "/v1/domains/:name", async ({ params }) => {
    await domains.undefine(params.name);
    return new Response(null, { status: 204 });
  });
  router.add("GET", "/v1/domains/:name/stats", async ({ params }) => {
    return jsonResponse(await domains.locked(params.name, (e) => domains.lifecycle.stats(e)));
  });
  router.add("GET", "/v1/domains/:name/logs", async ({ params, url }) => {
    const entry = domains.get(params.name);
    const lines = count(url.searchParams.get("lines") ?? "100", "lines", MAX_LOG_LINES);
    const tail = await readLogTail(entry.logFile, lines);
    return new Response(tail.text === "" ? "" : tail.text + "\n", {
      headers: {
        "content-type": "text/plain; charset=utf-8",
        // Whether output before these lines exists, so clients can say they are a tail.
        [LOG_EARLIER_HEADER]: tail.earlier ? "some" : "0",
      },
    });
  });
  router.add("GET", "/v1/domains/:name/console", async ({ params, request }) => {
    if ((request.headers.get("upgrade") ?? "").toLowerCase() !== CONSOLE_PROTOCOL) {
      throw new ApiError(
        "invalid",
        `This is a domain's console: ask with 'Connection: Upgrade' and 'Upgrade: ` +
          `${CONSOLE_PROTOCOL}' (as 'denovisor console' does)`,
      );
    }
    const run = domains.get(params.name).run;
    if (run === undefined) {
      throw new ApiError(
        "conflict",
        `Domain '${params.name}' is not running, so it has no console; start it with ` +
          `'denovisor start ${params.name}'`,
      );
    }
    // Connected before answering, so that a failure is an error answer, not a cut.
    let vmm: Deno.UnixConn;
    try {
      vmm = await Deno.connect({ transport: "unix", path: run.consoleSocket });
    } catch (error) {
      throw new ApiError(
        "unavailable",
        `Cannot reach the console of domain '${params.name}': ${(error as Error).message}`,
      );
    }
    return upgradeResponse(CONSOLE_PROTOCOL, async (client, early) => {
      try {
        if (early.length > 0) await vmm.write(early);
        await Promise.race([relay(client, vmm), relay(vmm, client)]);
      } finally {
        try {
          vmm.close();
        } catch {
          // Closed by the VMM.
        }
      }
    });
  });
  router.add("PUT", "/v1/domains/:name/memory", async ({ request, params }) => {
    const body = parseRequest(schema.MemoryRequest, await readJsonBody(request));
    return jsonResponse(await domains.setMemory(params.name, body.targetBytes, body));
  });
  router.add("PUT", "/v1/domains/:name/vcpus", async ({ request, params }) => {
    const body = parseRequest(schema.VcpusRequest, await readJsonBody(request));
    return jsonResponse(await domains.setVcpus(params.name, body.count, body));
  });
  router.add("PUT", "/v1/domains/:name/autostart", async ({ request, params }) => {
    const body = parseRequest(schema.EnabledRequest, await readJsonBody(request));
    return jsonResponse(await domains.setAutostart(params.name, body.enabled));
  });
  router.add("POST", "/v1/domains/:name/:action", async ({ request, params }) => {
    const action = params.action as Action;
    if (!DOMAIN_ACTIONS.includes(action)) {
      throw new ApiError(
        "not_found",
        `No domain action '${params.action}'; the actions are ${DOMAIN_ACTIONS.join(", ")}`,
      );
    }
    const body: ActionRequest = parseRequest(schema.ActionRequest, await readJsonBody(request));
    return jsonResponse(await runAction(domains, params.name, action, body));
  });
  router.add("GET", "/v1/events", () =>
    new Response(events.stream(), {
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-store" },
    }));
}

async function runAction(
  domains: DomainManager,
  name: string,
  action: Action,
  body: ActionRequest,
) {
  const lifecycle = domains.lifecycle;
  // A transient domain is gone once off: its last end is reported from this view.
  let shutDown: DomainEntry | undefined;
  if (action === "shutdown") {
    shutDown = domains.get(name);
    const { done } = await domains.locked(name, (e) => lifecycle.shutdown(e, body));
    // Waited for outside the lock, so that a destroy can still come in meanwhile; then
    // through the lock, which the end handling holds until the domain's state is final.
    if (done) {
      await done;
      await domains.locked(name, () => Promise.resolve()).catch(() => {});
    }
  } else {
    await domains.locked(name, (entry) => {
      switch (action) {
        case "start":
          return lifecycle.start(entry);
        case "destroy":
          return lifecycle.destroy(entry);
        case "reboot":
          return lifecycle.reboot(entry);
        case "reset":
          return lifecycle.reset(entry);
        case "pause":
          return lifecycle.pause(entry);
        case "resume":
          return lifecycle.resume(entry);
      }
    });
  }
  // A transient domain that stopped is gone: report its last view.
  try {
    return domains.info(name);
  } catch {
    return {
      name,
      state: "shutoff",
      persistent: false,
      note: "the transient domain is gone",
      ...(shutDown?.lastEnd !== undefined ? { lastEnd: shutDown.lastEnd } : {}),
    };
  }
}

function hostInfo(domains: DomainManager, paths: DenovisorPaths): HostInfo {
  const counts = domains.counts();
  return {
    version: VERSION,
    hostname: Deno.hostname(),
    cpus: navigator.hardwareConcurrency,
    memoryBytes: Deno.systemMemoryInfo().total,
    domainsDefined: counts.defined,
    domainsRunning: counts.running,
    stateDir: paths.stateDir,
    socket: paths.socket,
  };
}

function flag(url: URL, name: string): boolean {
  const value = url.searchParams.get(name);
  if (value === null || value === "0" || value === "false") return false;
  if (value === "" || value === "1" || value === "true") return true;
  throw new ApiError("invalid", `?${name}=${value}: expected 1 or 0`);
}

function count(text: string, name: string, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw new ApiError("invalid", `?${name}=${text}: expected a whole number from 1 to ${max}`);
  }
  return value;
}
