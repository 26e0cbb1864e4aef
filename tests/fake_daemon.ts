/**
 * A small stand-in for `denovisor daemon` for client tests: the API routes of
 * manager/api_types.ts over a unix socket, with domains in memory, a state machine like the
 * daemon's (409 on a wrong state), an event stream, and a console socket that echoes.
 *
 * @module
 */

import { join } from "node:path";
import type {
  DomainDefinition,
  DomainEvent,
  DomainEventKind,
  DomainInfo,
  DomainStats,
  PoolInfo,
  VolumeInfo,
} from "../manager/api_types.ts";

/** A running fake daemon. */
export interface FakeDaemon {
  socket: string;
  dir: string;
  domains: Map<string, DomainInfo>;
  /** Every request as "METHOD /path?query" and its JSON body. */
  requests: { line: string; body?: unknown }[];
  /** Pretends the VMM of `name` died (event "crashed"). */
  crash(name: string, detail: string): void;
  close(): Promise<void>;
}

function error(code: string, message: string, status: number): Response {
  return Response.json({ error: { code, message } }, { status });
}

/** Starts a fake daemon in a new temporary directory. */
export async function startFakeDaemon(): Promise<FakeDaemon> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-fake-" });
  const socket = join(dir, "api.sock");
  const domains = new Map<string, DomainInfo>();
  const requests: FakeDaemon["requests"] = [];
  const listeners = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const encoder = new TextEncoder();
  const consoles: Deno.UnixListener[] = [];
  let stopping!: () => void;
  const closing = new Promise<void>((resolve) => stopping = resolve);

  const emit = (domain: string, kind: DomainEventKind, detail?: string) => {
    const event: DomainEvent = { time: new Date().toISOString(), domain, kind, detail };
    for (const client of listeners) {
      try {
        client.enqueue(encoder.encode(JSON.stringify(event) + "\n"));
      } catch {
        listeners.delete(client);
      }
    }
  };

  const consoleSocket = (name: string) => {
    const path = join(dir, `${name}.console.sock`);
    try {
      Deno.removeSync(path);
    } catch {
      // Not there yet.
    }
    const listener = Deno.listen({ transport: "unix", path });
    consoles.push(listener);
    (async () => {
      for await (const connection of listener) serveConsole(connection, name);
    })().catch(() => {});
    return path;
  };

  const make = (definition: DomainDefinition, persistent: boolean): DomainInfo => ({
    name: definition.name,
    uuid: definition.uuid ?? crypto.randomUUID(),
    state: "shutoff",
    vcpus: definition.vcpus ?? 1,
    memoryBytes: (typeof definition.memory === "number" ? definition.memory : 256) * 1048576,
    autostart: definition.autostart ?? false,
    persistent,
    definition,
    logFile: join(dir, `${definition.name}.log`),
  });

  let nextId = 1;
  const start = (info: DomainInfo) => {
    info.state = "running";
    info.pid = 40000 + domains.size;
    info.id = nextId++;
    info.startedAt = new Date().toISOString();
    info.consoleSocket = consoleSocket(info.name);
    Deno.writeTextFileSync(info.logFile, "boot line 1\nboot line 2\x1b[31m red\n", {
      append: true,
    });
    emit(info.name, "started");
  };

  const stop = (info: DomainInfo, kind: DomainEventKind, detail: string) => {
    info.state = "shutoff";
    delete info.pid;
    delete info.id;
    delete info.consoleSocket;
    info.lastEnd = detail;
    emit(info.name, kind, detail);
    if (!info.persistent) {
      domains.delete(info.name);
      emit(info.name, "undefined");
    }
  };

  const validate = (body: unknown): DomainDefinition | Response => {
    const definition = body as DomainDefinition;
    if (typeof definition?.name !== "string") {
      return error("invalid", "name: missing; every domain needs a name", 400);
    }
    if (definition.vcpus === 0) {
      return error("invalid", "vcpus: 0 is too few; give 1 to 254", 400);
    }
    return definition;
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const body = request.body ? await request.json().catch(() => undefined) : undefined;
    requests.push({ line: `${request.method} ${url.pathname}${url.search}`, body });
    const parts = url.pathname.split("/").slice(2).map(decodeURIComponent);
    const [collection, name, action] = parts;
    if (collection === "events") {
      let self: ReadableStreamDefaultController<Uint8Array>;
      const stream = new ReadableStream<Uint8Array>({
        start: (controller) => {
          self = controller;
          listeners.add(controller);
        },
        cancel: () => {
          listeners.delete(self);
        },
      });
      return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
    }
    if (collection === "pools") return pools(parts);
    if (collection === "host") {
      return Response.json({
        version: "0.0.0-fake",
        hostname: "fakehost",
        cpus: 2,
        memoryBytes: 2 ** 30,
        domainsDefined: domains.size,
        domainsRunning: [...domains.values()].filter((d) => d.pid !== undefined).length,
        stateDir: dir,
        socket,
      });
    }
    if (collection !== "domains") return error("not_found", "no such route", 404);
    if (name === undefined) {
      if (request.method === "GET") {
        return Response.json([...domains.values()].map(({ definition: _, ...summary }) => summary));
      }
      const definition = validate(body);
      if (definition instanceof Response) return definition;
      if (domains.has(definition.name)) {
        return error("conflict", `domain '${definition.name}' already exists`, 409);
      }
      const info = make(definition, url.searchParams.get("transient") !== "1");
      domains.set(info.name, info);
      emit(info.name, "defined");
      if (url.searchParams.get("start") === "1") start(info);
      return Response.json(info, { status: 201 });
    }
    const info = domains.get(name);
    if (!info) {
      return error("not_found", `no domain '${name}'; see 'denovisor list'`, 404);
    }
    const wrongState = () =>
      error("conflict", `domain '${name}' is ${info.state}; cannot ${action}`, 409);
    if (action === undefined) {
      if (request.method === "GET") return Response.json(info);
      if (request.method === "DELETE") {
        if (info.state !== "shutoff") {
          return error("conflict", `domain '${name}' is ${info.state}; destroy it first`, 409);
        }
        domains.delete(name);
        emit(name, "undefined");
        return new Response(null, { status: 204 });
      }
      const definition = validate(body);
      if (definition instanceof Response) return definition;
      info.definition = definition;
      info.vcpus = definition.vcpus ?? 1;
      return Response.json(info);
    }
    switch (action) {
      case "start":
        if (info.state !== "shutoff") return wrongState();
        start(info);
        break;
      case "shutdown":
      case "destroy":
        // A guest that ignores the request, for as long as the client waits.
        if ((body as { timeoutSeconds?: number })?.timeoutSeconds === 999) {
          await closing;
          return error("timeout", "the daemon is stopping", 504);
        }
        if (info.state === "shutoff") return wrongState();
        stop(
          info,
          action === "shutdown" ? "shutdown" : "destroyed",
          action === "shutdown" ? "guest powered off" : "destroyed by request",
        );
        break;
      case "pause":
        if (info.state !== "running") return wrongState();
        info.state = "paused";
        emit(name, "paused");
        break;
      case "resume":
        if (info.state !== "paused") return wrongState();
        info.state = "running";
        emit(name, "resumed");
        break;
      case "reboot":
        if (info.state !== "running") return wrongState();
        break;
      case "reset":
        if (info.state !== "running") return wrongState();
        emit(name, "rebooted");
        break;
      case "stats":
        if (info.state === "shutoff") return wrongState();
        return Response.json(fakeStats(info));
      case "logs": {
        const text = await Deno.readTextFile(info.logFile).catch(() => "");
        const lines = url.searchParams.get("lines");
        const all = text.split("\n").slice(0, -1);
        // As the daemon: the last 100 lines by default, and whether there were more.
        const shown = all.slice(-Number(lines ?? 100));
        return new Response(shown.map((line) => line + "\n").join(""), {
          headers: { "x-denovisor-log-earlier": shown.length < all.length ? "some" : "0" },
        });
      }
      case "memory":
        if (info.state === "shutoff") return wrongState();
        return Response.json({
          ...info,
          note: `target ${(body as { targetBytes: number }).targetBytes}`,
        });
      case "vcpus":
        info.vcpus = (body as { count: number }).count;
        return Response.json({
          ...info,
          note: info.state === "shutoff"
            ? undefined
            : "the new vCPU count applies at its next start",
        });
      case "autostart":
        info.autostart = (body as { enabled: boolean }).enabled;
        return Response.json(info);
      default:
        return error("not_found", `no action '${action}'`, 404);
    }
    return Response.json(info);
  };

  const server = Deno.serve({
    transport: "unix",
    path: socket,
    onListen: () => {},
  }, handle);

  return {
    socket,
    dir,
    domains,
    requests,
    crash(name, detail) {
      const info = domains.get(name);
      if (info) stop(info, "crashed", detail);
    },
    async close() {
      stopping();
      for (const client of listeners) {
        try {
          client.close();
        } catch {
          // Already closed.
        }
      }
      for (const listener of consoles) {
        try {
          listener.close();
        } catch {
          // Already closed.
        }
      }
      await server.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** The console protocol of vmm/vmm_config.ts; the "guest" echoes what it gets, uppercased. */
async function serveConsole(connection: Deno.UnixConn, name: string): Promise<void> {
  const encoder = new TextEncoder();
  const buffer = new Uint8Array(4096);
  try {
    const count = await connection.read(buffer);
    if (count === null) return;
    const hello = new TextDecoder().decode(buffer.subarray(0, count)).trim();
    await connection.write(encoder.encode(`ok ${hello === "ro" ? "ro" : "rw"}\n${name} login: `));
    while (true) {
      const n = await connection.read(buffer);
      if (n === null) break;
      const text = new TextDecoder().decode(buffer.subarray(0, n));
      await connection.write(encoder.encode(`[${text.toUpperCase()}]`));
    }
  } catch {
    // The viewer went away.
  } finally {
    try {
      connection.close();
    } catch {
      // Already closed.
    }
  }
}

function fakeStats(info: DomainInfo): DomainStats {
  return {
    name: info.name,
    state: info.state,
    vcpus: Array.from({ length: info.vcpus }, (_, index) => ({ index, cpuTimeNs: 1.5e9 })),
    memory: {
      guestBytes: info.memoryBytes,
      availableBytes: info.memoryBytes,
      balloonBytes: 0,
      rssBytes: 50 * 1048576,
    },
    disks: [{
      name: "vda",
      path: "/images/a.raw",
      readRequests: 10,
      writeRequests: 2,
      readBytes: 40960,
      writeBytes: 8192,
      flushes: 1,
      errors: 0,
      throttled: 0,
    }],
    // The tap a NIC without one gets, as the VMM reports it.
    nics: (info.definition.nics ?? []).map((nic, index) => ({
      name: `net${index}`,
      tap: nic.tap && nic.tap !== "auto" ? nic.tap : `dnv-${info.name}-${index}`,
      mac: nic.mac ?? "52:54:00:00:00:01",
      rxFrames: 0,
      txFrames: 0,
      rxBytes: 0,
      txBytes: 0,
      rxDropped: 0,
    })),
  };
}

function pools(parts: string[]): Response {
  const [, pool, sub] = parts;
  const list: PoolInfo[] = [
    { name: "default", type: "dir", path: "/images", state: "active", volumes: 2 },
    { name: "fast", type: "dir", path: "/fast", state: "active", volumes: 0 },
  ];
  if (pool === undefined) return Response.json(list);
  if (sub === "volumes" && pool === "default") {
    const volume = (name: string): VolumeInfo => ({
      pool: "default",
      name,
      path: `/images/${name}`,
      format: "raw",
      virtualSize: 1 << 20,
      allocatedSize: 0,
      backingChain: [],
      snapshots: [],
    });
    return Response.json([volume("web-root.raw"), volume("web-data.raw")]);
  }
  const found = list.find((each) => each.name === pool);
  return found
    ? Response.json(sub === "volumes" ? [] : found)
    : error("not_found", `no pool '${pool}'`, 404);
}
