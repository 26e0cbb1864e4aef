/**
 * `denovisor daemon`: owns one state directory (lock), loads the domains, takes over the
 * VMMs a previous daemon left running, serves the API on a unix socket that only root
 * (or one chosen group) can open, reports readiness to systemd and starts the autostart
 * domains. On SIGTERM or SIGINT it stops serving and removes its socket but leaves the
 * VMMs running: running domains keep running across a daemon restart.
 *
 * @module
 */

import { type DaemonLog, daemonLog } from "../systemd/journal.ts";
import { dirname, join } from "node:path";
import { type DenovisorPaths, resolvePaths } from "../paths.ts";
import { DomainStore } from "../store/domain_store.ts";
import { StateLock } from "../store/state_lock.ts";
import { PoolManager } from "../../storage/pool/mod.ts";
import { addPoolRoutes } from "./pool_routes.ts";
import { DomainManager } from "./domains.ts";
import { addDomainRoutes } from "./domain_routes.ts";
import { addSaveRoutes } from "./save_routes.ts";
import { SnapshotStore } from "../snapshots/snapshot_store.ts";
import { EventHub } from "./events.ts";
import { Router } from "../../common/http/mod.ts";
import { addOpenApiRoute } from "./openapi_route.ts";
import { addMetricsRoute } from "./metrics_route.ts";
import { type MetricsListenOptions, startMetricsListener } from "./metrics_listener.ts";
import { listenPrivately, resolveGroup } from "./socket.ts";
import { checkTrustedDirectory } from "./dir_safety.ts";
import { LOG_TRIM_INTERVAL_MS, trimLog } from "./console_log.ts";
import { confineGroupRequest } from "./group_policy.ts";
import { errorResponse } from "../../common/http/mod.ts";
import type { UnixHttpServer } from "../../common/http/server.ts";
import { adminSocket } from "../paths.ts";
import { notifyReady, notifyStatus, notifyStopping } from "../systemd/notify.ts";
import { FarmMember, type FarmOptions } from "../farm/farm_member.ts";
import { addFarmRoutes } from "../farm/farm_routes.ts";
import type { MigrationFlags } from "../migration/listen_options.ts";
import { DomainMigrations } from "./migration_ops.ts";
import { addMigrationRoutes } from "./migration_routes.ts";
import { startMigrationListener } from "./migration_listener.ts";
import { setVmmPool, VmmPool } from "../sandbox/vmm_pool.ts";
import { warmVmmModules } from "./vmm_process.ts";

/** Options of `runDaemon`. */
export interface DaemonOptions {
  stateDir?: string;
  socket?: string;
  /** A group whose members may use the API (socket 0660); default: root only (0600). */
  socketGroup?: string;
  /**
   * Directories beyond the pools where backing files of imported images and of domain
   * disks may live (`--backing-dir`); default none.
   */
  backingDirectories?: readonly string[];
  /**
   * Directories under which members of the socket group may put pools, and from and into
   * which they may import and export (`--pool-root`); default none.
   */
  poolRoots?: readonly string[];
  /**
   * Where log lines go (default: journal entries with the domain as a field under
   * systemd, else stderr; manager/systemd/journal.ts).
   */
  log?: DaemonLog;
  /** Join this farm (manager/farm/); without it the daemon works alone. */
  farm?: FarmOptions;
  /** --migration-*: the listener (off without `listen`) and the credentials. */
  migration?: MigrationFlags;
  /** --metrics-listen/--metrics-allow: GET /metrics on TCP too (off without it). */
  metrics?: MetricsListenOptions;
  /** --vmm-pool: how many jailed VMMs to keep pre-started (../sandbox/vmm_pool.ts); 0 (default) none. */
  vmmPool?: number;
}

/** A running daemon. */
export interface Daemon {
  paths: DenovisorPaths;
  domains: DomainManager;
  /** Stops serving (VMMs keep running); resolves when the socket is gone. */
  stop(): Promise<void>;
  /** Resolves once the daemon has stopped. */
  finished: Promise<void>;
}

/** Starts the daemon; resolves once the API socket is listening. */
export async function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  const log = options.log ?? daemonLog();
  const paths = resolvePaths(options);
  const gid = options.socketGroup === undefined
    ? undefined
    : await resolveGroup(options.socketGroup);
  const store = new DomainStore(paths.stateDir);
  await store.init();
  checkTrustedDirectory(paths.stateDir, "The state directory");
  const lock = StateLock.acquire(paths.stateDir);
  // A SIGTERM that arrives while the daemon is still setting up (its metrics address or
  // socket may already answer) is held and honoured once everything is there to stop,
  // instead of killing the process with its sockets left behind.
  let stopAsked = false;
  const askStop = () => stopAsked = true;
  for (const signal of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(signal, askStop);
  const dropEarlyListener = () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      Deno.removeSignalListener(signal, askStop);
    }
  };
  try {
    await prepareRunDir(paths, gid);
    const events = new EventHub();
    events.listen((event) =>
      log(`domain '${event.domain}' ${event.kind}${event.detail ? `: ${event.detail}` : ""}`, {
        domain: event.domain,
        event: event.kind,
      })
    );
    const backingDirectories = options.backingDirectories ?? [];
    // Each needs the other, through closures called only once both exist.
    const domains: DomainManager = new DomainManager({
      store,
      events,
      paths,
      volumes: (pool, volume) => pools.resolveVolume(pool, volume),
      backingDirectories: () => [...pools.list().map((pool) => pool.path), ...backingDirectories],
      log,
    });
    const pools = new PoolManager({
      stateDir: paths.stateDir,
      volumeUser: (path) => domains.userOfPath(path),
      allowedBackingDirectories: backingDirectories,
    });
    await domains.load();
    // Listen first: hung VMMs must not hold the socket back (systemd's start timeout).
    const reattached = domains.reattach();

    const router = new Router();
    const migrations = new DomainMigrations({
      domains,
      events,
      paths,
      flags: options.migration ?? {},
      log,
    });
    // In a farm, the farm's routes come first: they replace define, edit, undefine,
    // start and migrate with versions that go through etcd (the router takes the first
    // match).
    const farm = options.farm &&
      new FarmMember(options.farm, domains, events, log, pools, migrations);
    if (farm) {
      // What the farm passes on to this host's own domain routes (a domain running here).
      const local = new Router();
      addMigrationRoutes(local, migrations);
      addDomainRoutes(local, domains, events, paths);
      addFarmRoutes(router, farm, (request) => local.handle(request));
    }
    // Before the domain routes, whose POST /v1/domains/{name}/{action} would take these.
    addMigrationRoutes(router, migrations);
    // Before the domain routes: their POST /v1/domains/{name}/{action} would take these.
    addSaveRoutes(router, {
      domains,
      pools,
      store: new SnapshotStore(paths.stateDir),
      stateDir: paths.stateDir,
    });
    addDomainRoutes(router, domains, events, paths);
    addPoolRoutes(router, pools);
    addOpenApiRoute(router);
    addMetricsRoute(router, { domains, pools: () => pools.list() });
    const metricsListener = options.metrics &&
      startMetricsListener(options.metrics, { domains, pools: () => pools.list() }, log);
    const servers: UnixHttpServer[] = [];
    if (gid === undefined) {
      // A dead daemon's root socket would draw root's clients to nothing (the lock is ours).
      await Deno.remove(adminSocket(paths)).catch(() => {});
      servers.push(
        await listenPrivately(paths.socket, undefined, (request) => router.handle(request), {
          log,
        }),
      );
    } else {
      // Two doors: root's (admin.sock, 0600) and the group's (api.sock, 0660), where
      // group_policy.ts confines what members may ask.
      const policy = { poolRoots: options.poolRoots ?? [], pools };
      servers.push(
        await listenPrivately(adminSocket(paths), undefined, (request) => router.handle(request), {
          log,
        }),
        await listenPrivately(paths.socket, gid, async (request) => {
          try {
            return await router.handle(await confineGroupRequest(request, policy));
          } catch (error) {
            return errorResponse(error);
          }
        }, { log }),
      );
    }
    log(`listening on ${paths.socket} (state ${paths.stateDir})`);
    const warmed = warmVmmModules().then((failure) => {
      if (failure) log(`cannot fill Deno's cache with the VMM's modules: ${failure}`);
    });
    const vmmPool = new VmmPool(join(paths.runDir, "vmm-pool"), options.vmmPool ?? 0, log);
    setVmmPool(vmmPool);
    // After the takeover and the cache: the VMMs left running come first.
    reattached.finally(() => warmed).finally(() => vmmPool.start()).catch((error) =>
      log(`VMM pool: ${(error as Error).message}`)
    );
    const migrationListener = await startMigrationListener(
      migrations,
      options.migration ?? {},
      log,
    ).catch(async (error) => {
      await Promise.all(servers.map((server) => server.shutdown()));
      throw error;
    });
    try {
      notifyReady(`${domains.counts().running} domains running`);
    } catch (error) {
      log(`cannot tell systemd the daemon is ready: ${(error as Error).message}`);
    }

    for (const failure of pools.startAutostart()) log(`pool autostart: ${failure}`);
    // The farm is joined once the running domains are known (their owner keys are
    // reconciled at join); while etcd is unreachable the daemon serves its local domains.
    if (farm) reattached.then(() => joinFarm(farm, log));
    reattached.then(() => {
      try {
        notifyStatus(`${domains.counts().running} domains running`);
      } catch {
        // Not under systemd: nothing to tell.
      }
      // In a farm, autostart claims each domain first (FarmMember.join): one host runs it.
      return farm ? undefined : domains.autostart();
    }).catch((error) => log(`autostart: ${error.message}`));

    // Logs of running domains stay bounded while they run (console_log.ts).
    const trimmer = setInterval(() => {
      for (const { name } of domains.list()) {
        try {
          const entry = domains.get(name);
          if (entry.run === undefined) continue;
          trimLog(entry.logFile).catch((error) =>
            log(`cannot trim the log of '${name}': ${(error as Error).message}`)
          );
        } catch {
          // Undefined meanwhile.
        }
      }
    }, LOG_TRIM_INTERVAL_MS);
    let stopping: Promise<void> | undefined;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => finish = resolve);
    const stop = () =>
      stopping ??= (async () => {
        log("stopping; running domains keep running");
        try {
          notifyStopping();
        } catch {
          // Not under systemd, or its socket is gone: nothing to tell.
        }
        clearInterval(trimmer);
        setVmmPool(undefined);
        await vmmPool.drain();
        await metricsListener?.close().catch(() => {});
        // A migration still relaying keeps its connection (its VMM copes with a cut).
        await Promise.race([migrationListener?.close(), new Promise((r) => setTimeout(r, 3000))]);
        events.closeAll();
        await farm?.leave();
        // Requests still running (a shutdown waiting for its guest) get a few seconds.
        await Promise.race([
          Promise.all(servers.map((server) => server.shutdown())),
          new Promise((r) => setTimeout(r, 3000)),
        ]);
        await Deno.remove(paths.socket).catch(() => {});
        if (gid !== undefined) await Deno.remove(adminSocket(paths)).catch(() => {});
        lock.release();
        for (const signal of ["SIGTERM", "SIGINT"] as const) {
          Deno.removeSignalListener(signal, stop);
        }
        finish();
      })();
    for (const signal of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(signal, stop);
    dropEarlyListener();
    if (stopAsked) void stop();
    return { paths, domains, stop, finished };
  } catch (error) {
    dropEarlyListener();
    lock.release();
    throw error;
  }
}

/**
 * The runtime directory beside the socket: created 0700 (0750 for a socket group) when
 * missing. A directory the daemon cannot trust (dir_safety.ts) is refused: the domains'
 * control sockets live there.
 */
async function prepareRunDir(paths: DenovisorPaths, gid: number | undefined): Promise<void> {
  const dir = dirname(paths.socket);
  let created = false;
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) throw new Error(`${dir} is not a directory; choose another --socket`);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    created = true;
  }
  // Another user's directory, or one others may write to (such as /tmp itself), would let
  // them swap api.sock or a domain's control socket.
  checkTrustedDirectory(dir, "The socket's directory");
  if (created || dir === dirname(resolvePaths({}).socket)) {
    await Deno.chmod(dir, gid === undefined ? 0o700 : 0o750);
    if (gid !== undefined) await Deno.chown(dir, null, gid);
  }
  await Deno.mkdir(join(dir, "domains"), { recursive: true, mode: 0o700 });
}

/** Joins the farm, retrying every 5 s while etcd cannot be reached. */
async function joinFarm(farm: FarmMember, log: (line: string) => void): Promise<void> {
  while (!farm.stopped) {
    try {
      await farm.join();
      return;
    } catch (error) {
      log(`cannot join the farm: ${(error as Error).message}; retrying in 5 s`);
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}
