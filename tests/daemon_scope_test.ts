/**
 * virsh's --live, --config and --current on mem-set, vcpu-set and edit, and what list,
 * info and vcpu-count show once a running domain's next start differs from what it runs
 * with. On KVM, with the test guest (guests/build/domain.elf).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CLIENT_EXIT } from "../cli/output.ts";
import type { DomainInfo } from "../manager/api_types.ts";
import { denovisor, guest } from "./cli_support.ts";
import { TestDaemon } from "./daemon_support.ts";
import { kvmTest } from "./kvm_support.ts";

const MiB = 1024 * 1024;

kvmTest(
  "mem-set, vcpu-set and edit take --live/--config/--current; list, info and vcpu-count show both values",
  async () => {
    const daemon = await TestDaemon.start();
    const cli = (...args: string[]) => denovisor([...args, "--socket", daemon.socket]);
    const ok = async (...args: string[]) => {
      const result = await cli(...args);
      assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
      return result.stdout.trim();
    };
    const refused = async (code: number, pattern: RegExp, ...args: string[]) => {
      const result = await cli(...args);
      assert.equal(result.code, code, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, pattern);
    };
    try {
      const definition = {
        name: "web",
        vcpus: 1,
        memory: 64,
        balloon: true,
        boot: { kernel: guest("domain") },
      };
      const file = join(daemon.dir, "web.json");
      await Deno.writeTextFile(file, JSON.stringify(definition));
      await ok("define", file);
      await ok("start", "web");

      // vcpu-set: --config (the default) from the next start; no hotplug, so no --live.
      assert.match(await ok("vcpu-set", "web", "2"), /applies at its next start/);
      await refused(CLIENT_EXIT.CONFLICT, /no vCPU hotplug/, "vcpu-set", "web", "3", "--live");
      await refused(CLIENT_EXIT.CONFLICT, /no vCPU hotplug/, "vcpu-set", "web", "3", "--current");
      await refused(
        CLIENT_EXIT.USAGE,
        /--current is --live or --config/,
        "vcpu-set",
        "web",
        "3",
        "--current",
        "--config",
      );
      assert.equal(await ok("vcpu-count", "web"), "1 (2 at next start)");
      assert.equal(await ok("vcpu-count", "web", "--live"), "1");
      assert.equal(await ok("vcpu-count", "web", "--config"), "2");
      assert.deepEqual(JSON.parse(await ok("vcpu-count", "web", "--json")), {
        name: "web",
        vcpus: 1,
        nextVcpus: 2,
      });

      // mem-set --config changes the next start's RAM; --live is the balloon, bounded.
      assert.match(await ok("mem-set", "web", "128M", "--config"), /at next start set to 128 MiB/);
      await refused(
        CLIENT_EXIT.INVALID,
        /above the domain's memory .*the balloon can only give memory back \(--config sets/,
        "mem-set",
        "web",
        "96M",
        "--live",
      );
      const info = JSON.parse(await ok("info", "web", "--json")) as DomainInfo;
      assert.equal(info.vcpus, 1);
      assert.equal(info.memoryBytes, 64 * MiB);
      assert.deepEqual(info.next, { vcpus: 2, memoryBytes: 128 * MiB });
      const text = await ok("info", "web");
      assert.match(text, /^vCPUs:\s+1 \(2 at next start\)$/m);
      assert.match(text, /^Memory:\s+64 MiB \(128 MiB at next start\)$/m);
      assert.match(await ok("list"), /\s1\s+web\s+running\s+1 -> 2\s+64 MiB -> 128 MiB\s+no\s+no/);

      // edit: a running guest's definition cannot change in place.
      await refused(
        CLIENT_EXIT.USAGE,
        /edit --live: a running guest's definition cannot change/,
        "edit",
        "web",
        "--live",
        "--file",
        file,
      );
      await refused(
        CLIENT_EXIT.CONFLICT,
        /edit --current: domain 'web' is running/,
        "edit",
        "web",
        "--current",
        "--file",
        file,
      );
      await ok("edit", "web", "--config", "--file", file);
      assert.equal(await ok("vcpu-count", "web"), "1", "the file's definition has 1 vCPU again");

      // Shut off: --current (the mem-set default) is --config; --live has no guest to change.
      await ok("destroy", "web");
      assert.equal(await ok("mem-set", "web", "96M"), "Domain 'web' memory set to 96 MiB");
      await refused(
        CLIENT_EXIT.CONFLICT,
        /is not running; --live/,
        "mem-set",
        "web",
        "96M",
        "--live",
      );
      await refused(
        CLIENT_EXIT.CONFLICT,
        /is not running; --live/,
        "vcpu-set",
        "web",
        "2",
        "--live",
      );
      const off = JSON.parse(await ok("info", "web", "--json")) as DomainInfo;
      assert.equal(off.memoryBytes, 96 * MiB);
      assert.equal(off.next, undefined);
      await ok("edit", "web", "--current", "--file", file);
      assert.equal(
        (JSON.parse(await ok("info", "web", "--json")) as DomainInfo).memoryBytes,
        64 * MiB,
      );
    } finally {
      await daemon.cleanup();
    }
  },
  120_000,
);
