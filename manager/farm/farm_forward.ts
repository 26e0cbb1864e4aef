/**
 * Domain verbs asked on a host that does not run the domain: carried to its owner through
 * etcd, as the other intents are (hosts never call each other). The asking daemon writes
 * an intent `{ host: "", from: OWNER, forward: { method, path, body } }`; the owner, which
 * watches the intents, answers the request with its own domain routes and stores the
 * answer (status, content type, body) in the intent; the asking daemon answers with it.
 *
 * Verbs forwarded: reboot, reset, pause, resume, memory, vCPUs, stats and logs.
 * The console is a byte stream for as long as it is open: etcd is no place for it, so
 * asked elsewhere it is refused with the host that serves it.
 *
 * @module
 */

import { ApiError, jsonResponse, readJsonBody, type Router } from "../../common/http/mod.ts";
import type { IntentRecord } from "./farm_records.ts";
import type { FarmMember } from "./farm_member.ts";

/** The largest answer carried back through etcd (logs are cut to their last bytes). */
const MAX_ANSWER_BYTES = 256 * 1024;

/** A request carried to the owner. */
export interface ForwardedRequest {
  method: string;
  /** Path and query, e.g. "/v1/domains/web/logs?lines=50". */
  path: string;
  body?: unknown;
}

/** The owner's answer. */
export interface ForwardedAnswer {
  status: number;
  contentType: string;
  body: string;
}

/**
 * The host that runs `name` when it is another one (the request must go there), or
 * undefined when this host should answer (it runs it, or nobody does).
 */
export async function ownerElsewhere(
  member: FarmMember,
  name: string,
): Promise<string | undefined> {
  const here = member.domains.entries().some((e) =>
    e.definition.name === name && e.run !== undefined
  );
  if (here) return undefined;
  const owner = await member.store.owner(name);
  return owner === undefined || owner.owner.host === member.host ? undefined : owner.owner.host;
}

/** Sends `request` to the daemon of `owner` through an intent; its answer as a Response. */
export async function forward(
  member: FarmMember,
  name: string,
  owner: string,
  request: ForwardedRequest,
): Promise<Response> {
  const verb = `${request.method} ${request.path.split("?")[0].split("/").pop()}`;
  const intent = await member.intents.request(
    name,
    "",
    `${verb} asked on '${member.host}'`,
    owner,
    undefined,
    undefined,
    request,
  );
  const answer = intent.result as ForwardedAnswer | undefined;
  if (answer === undefined || typeof answer.status !== "number") {
    throw new ApiError("internal", `Host '${owner}' answered nothing for '${name}'`);
  }
  return new Response(answer.status === 204 ? null : answer.body, {
    status: answer.status,
    headers: { "content-type": answer.contentType, "x-denovisor-host": owner },
  });
}

/** Owner side: answers a forwarded request with this host's own domain routes. */
export async function answerForwarded(
  member: FarmMember,
  domain: string,
  intent: IntentRecord,
): Promise<void> {
  const request = intent.forward!;
  let answer: ForwardedAnswer;
  try {
    if (member.local === undefined) throw new Error("this daemon serves no domain routes");
    if (!request.path.startsWith(`/v1/domains/${encodeURIComponent(domain)}/`)) {
      throw new Error(`a forwarded request must be about '${domain}'`);
    }
    const response = await member.local(
      new Request(`http://denovisor${request.path}`, {
        method: request.method,
        headers: request.body === undefined ? {} : { "content-type": "application/json" },
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
      }),
    );
    let body = await response.text();
    // The asking host shows the state this host publishes: publish the new one first.
    if (request.method !== "GET") await member.publish().catch(() => {});
    if (body.length > MAX_ANSWER_BYTES) body = body.slice(-MAX_ANSWER_BYTES);
    answer = {
      status: response.status,
      contentType: response.headers.get("content-type") ?? "application/json",
      body,
    };
  } catch (error) {
    await member.store.finishIntent(domain, intent.id, (error as Error).message);
    return;
  }
  await member.store.finishIntent(domain, intent.id, undefined, answer);
}

/** The refusal of a console asked on a host that does not run the domain. */
export async function consoleElsewhere(member: FarmMember, name: string, owner: string) {
  const record = await member.store.liveHost(owner).catch(() => undefined);
  const address = record?.record.address ?? owner;
  return new ApiError(
    "conflict",
    `Domain '${name}' runs on host '${owner}' (${address}); its console is served there: ` +
      `run 'denovisor console ${name}' on '${owner}'`,
  );
}

/** The domain verbs that are carried to the owner when asked elsewhere. */
const FORWARDED: [method: string, verb: string][] = [
  ["POST", "reboot"],
  ["POST", "reset"],
  ["POST", "pause"],
  ["POST", "resume"],
  ["PUT", "memory"],
  ["PUT", "vcpus"],
  ["GET", "stats"],
  ["GET", "logs"],
];

/**
 * Adds the routes of the verbs above, `GET .../console` (refused elsewhere, with the
 * host) and `GET /v1/domains/{name}` (this host's entry, plus `host`, the owner, and,
 * when that is another host, `hostState`, the state it published; `state` stays this
 * host's own, shutoff). A domain that runs here, or nowhere, is answered by `local`.
 */
export function addForwardRoutes(
  router: Router,
  member: FarmMember,
  local: (request: Request) => Promise<Response>,
): void {
  for (const [method, verb] of FORWARDED) {
    router.add(method, `/v1/domains/:name/${verb}`, async ({ request, params, url }) => {
      const owner = await ownerElsewhere(member, params.name).catch(() => undefined);
      if (owner === undefined) return await local(request);
      const body = method === "GET" ? undefined : await readJsonBody(request);
      return await forward(member, params.name, owner, {
        method,
        path: url.pathname + url.search,
        body,
      });
    });
  }
  router.add("GET", "/v1/domains/:name/console", async ({ request, params }) => {
    const owner = await ownerElsewhere(member, params.name).catch(() => undefined);
    if (owner === undefined) return await local(request);
    throw await consoleElsewhere(member, params.name, owner);
  });
  router.add("GET", "/v1/domains/:name", async ({ request, params }) => {
    const name = params.name;
    const entry = member.domains.get(name); // 404 for an unknown name.
    const owner = member.owners.get(name);
    if (entry.run !== undefined) {
      // It runs here, whatever the last reconcile read (a domain just moved here).
      const answer = await local(request);
      return answer.ok ? jsonResponse({ ...await answer.json(), host: member.host }) : answer;
    }
    if (owner === undefined || owner === member.host) return await local(request);
    // `state` stays this host's (no VMM here: shutoff); `hostState` is the owner's, as it
    // published it at this host's last reconcile (no etcd call: works while etcd is away).
    return jsonResponse({
      ...member.domains.info(name),
      host: owner,
      hostState: member.remoteStates.get(name) ?? "running",
    });
  });
}
