import assert from "node:assert/strict";
import { join } from "node:path";
import { DefinitionError, validateDefinition } from "./definition.ts";
import { probeFormat, type ResolvedVolume, resolveVmmConfig } from "./resolve.ts";

const HOST = { hostMemoryBytes: 8 * 1024 ** 3 };

async function withFiles(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-resolve-" });
  try {
    await Deno.writeFile(join(dir, "vmlinux"), new Uint8Array([0x7f, 0x45, 0x4c, 0x46]));
    await Deno.writeFile(join(dir, "initrd"), new Uint8Array(16));
    await Deno.writeFile(join(dir, "a.raw"), new Uint8Array(4096));
    await Deno.writeFile(
      join(dir, "b.qcow2"),
      new Uint8Array([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]),
    );
    await Deno.writeFile(join(dir, "tiny"), new Uint8Array([0x51]));
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function volumes(dir: string) {
  return (pool: string, volume: string): ResolvedVolume => {
    if (pool === "default" && volume === "data") {
      return { path: join(dir, "b.qcow2"), format: "qcow2" };
    }
    throw new Error(`no volume '${volume}' in pool '${pool}'`);
  };
}

async function refused(promise: Promise<unknown>, path: string, message: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DefinitionError, `not a DefinitionError: ${error}`);
    assert.equal(error.message, message);
    assert.equal(error.path, path);
    return true;
  });
}

Deno.test("resolveVmmConfig() resolves volumes, probes formats and parses rate limits", async () => {
  await withFiles(async (dir) => {
    const definition = validateDefinition({
      name: "web",
      vcpus: 2,
      memory: "1G",
      boot: { kernel: join(dir, "vmlinux"), initrd: join(dir, "initrd"), cmdline: "console=ttyS0" },
      disks: [
        { path: join(dir, "a.raw"), rateLimit: "bw=10M" },
        { path: join(dir, "b.qcow2"), readOnly: true, serial: "S1", transport: "mmio" },
      ],
      nics: [{ bridge: "br0", rateLimit: "ops=100" }],
      rng: { rateLimit: "bw=1M" },
      balloon: true,
      onReboot: "destroy",
    }, HOST);
    const config = await resolveVmmConfig(definition, {
      runDir: join(dir, "run"),
      logFile: join(dir, "web.log"),
      volumes: volumes(dir),
      ...HOST,
    });
    assert.deepEqual(config, {
      name: "web",
      uuid: definition.uuid,
      vcpus: 2,
      memoryBytes: 1024 ** 3,
      boot: {
        kind: "linux",
        kernel: join(dir, "vmlinux"),
        initrd: join(dir, "initrd"),
        cmdline: "console=ttyS0",
      },
      disks: [
        {
          path: join(dir, "a.raw"),
          format: "raw",
          readOnly: false,
          transport: "pci",
          rateLimit: { bandwidth: { size: 10 * 1024 * 1024, refillTimeMs: 1000 } },
        },
        {
          path: join(dir, "b.qcow2"),
          format: "qcow2",
          readOnly: true,
          serial: "S1",
          transport: "mmio",
        },
      ],
      nics: [{
        tap: "auto",
        mac: definition.nics![0].mac,
        bridge: "br0",
        transport: "pci",
        rateLimit: { ops: { size: 100, refillTimeMs: 1000 } },
      }],
      rng: { rateLimit: { bandwidth: { size: 1024 * 1024, refillTimeMs: 1000 } } },
      balloon: true,
      virtioConsole: false,
      onReboot: "destroy",
      logFile: join(dir, "web.log"),
      runDir: join(dir, "run"),
    });
  });
});

Deno.test("resolveVmmConfig() takes a volume's path and format from the pool", async () => {
  await withFiles(async (dir) => {
    const definition = validateDefinition(
      { name: "web", boot: { demo: true }, disks: [{ volume: "data" }] },
      HOST,
    );
    const config = await resolveVmmConfig(definition, {
      runDir: dir,
      logFile: join(dir, "log"),
      volumes: volumes(dir),
      ...HOST,
    });
    assert.deepEqual(config.boot, { kind: "demo" });
    assert.equal(config.disks[0].path, join(dir, "b.qcow2"));
    assert.equal(config.disks[0].format, "qcow2");
    assert.equal(config.rng, undefined);
  });
});

Deno.test("resolveVmmConfig() names the volume the pool does not have", async () => {
  await withFiles(async (dir) => {
    const definition = validateDefinition({
      name: "web",
      boot: { demo: true },
      disks: [{ volume: "data" }, { volume: "web" }],
    }, HOST);
    await refused(
      resolveVmmConfig(definition, { runDir: dir, logFile: "/l", volumes: volumes(dir), ...HOST }),
      "disks[1].volume",
      "disks[1].volume: no volume 'web' in pool 'default'",
    );
  });
});

Deno.test("resolveVmmConfig() refuses a format that contradicts the pool's", async () => {
  await withFiles(async (dir) => {
    const definition = validateDefinition(
      { name: "web", boot: { demo: true }, disks: [{ volume: "data", format: "raw" }] },
      HOST,
    );
    await refused(
      resolveVmmConfig(definition, { runDir: dir, logFile: "/l", volumes: volumes(dir), ...HOST }),
      "disks[0].format",
      "disks[0].format: raw, but volume 'data' of pool 'default' is qcow2; leave format out",
    );
  });
});

Deno.test("resolveVmmConfig() refuses a missing kernel, initrd and disk image", async () => {
  await withFiles(async (dir) => {
    const options = { runDir: dir, logFile: "/l", volumes: volumes(dir), ...HOST };
    const kernel = join(dir, "nope");
    await refused(
      resolveVmmConfig(validateDefinition({ name: "a", boot: { kernel } }, HOST), options),
      "boot.kernel",
      `boot.kernel: ${kernel} does not exist`,
    );
    await refused(
      resolveVmmConfig(
        validateDefinition(
          { name: "a", boot: { kernel: join(dir, "vmlinux"), initrd: kernel } },
          HOST,
        ),
        options,
      ),
      "boot.initrd",
      `boot.initrd: ${kernel} does not exist`,
    );
    await refused(
      resolveVmmConfig(
        validateDefinition({ name: "a", boot: { demo: true }, disks: [{ path: kernel }] }, HOST),
        options,
      ),
      "disks[0].path",
      `disks[0].path: ${kernel} does not exist`,
    );
  });
});

Deno.test("resolveVmmConfig() refuses a directory as a disk", async () => {
  await withFiles(async (dir) => {
    await refused(
      resolveVmmConfig(
        validateDefinition({ name: "a", boot: { demo: true }, disks: [{ path: dir }] }, HOST),
        { runDir: dir, logFile: "/l", volumes: volumes(dir), ...HOST },
      ),
      "disks[0].path",
      `disks[0].path: ${dir} is not a regular file or block device`,
    );
  });
});

Deno.test("resolveVmmConfig() refuses a volume that is also given by path", async () => {
  await withFiles(async (dir) => {
    const definition = validateDefinition({
      name: "a",
      boot: { demo: true },
      disks: [{ volume: "data" }, { path: join(dir, "b.qcow2") }],
    }, HOST);
    await refused(
      resolveVmmConfig(definition, { runDir: dir, logFile: "/l", volumes: volumes(dir), ...HOST }),
      "disks[1]",
      `disks[1]: ${
        join(dir, "b.qcow2")
      } is the same image as disks[0]; a domain may use an image once`,
    );
  });
});

Deno.test("probeFormat() finds the qcow2 magic and calls everything else raw", () => {
  assert.equal(probeFormat(new Uint8Array([0x51, 0x46, 0x49, 0xfb])), "qcow2");
  assert.equal(probeFormat(new Uint8Array([0x51, 0x46, 0x49])), "raw");
  assert.equal(probeFormat(new Uint8Array(0)), "raw");
});

Deno.test("resolveVmmConfig() gives a firmware boot its image, SATA disks and CD-ROMs", async () => {
  await withFiles(async (dir) => {
    const definition = validateDefinition({
      name: "hvm",
      boot: { firmware: join(dir, "vmlinux"), order: ["cdrom", "disk"] },
      disks: [{ path: join(dir, "a.raw") }, { volume: "data", bus: "sata" }],
      cdroms: [join(dir, "tiny")],
    }, HOST);
    const config = await resolveVmmConfig(definition, {
      runDir: join(dir, "run"),
      logFile: join(dir, "hvm.log"),
      volumes: volumes(dir),
      ...HOST,
    });
    assert.deepEqual(config.boot, {
      kind: "firmware",
      firmware: join(dir, "vmlinux"),
      order: ["cdrom", "disk"],
    });
    assert.deepEqual(config.disks.map((d) => d.path), [join(dir, "a.raw")]);
    assert.deepEqual(config.sataDisks, [
      { path: join(dir, "b.qcow2"), format: "qcow2", readOnly: false },
    ]);
    assert.deepEqual(config.cdroms, [join(dir, "tiny")]);
    const missing = validateDefinition({
      name: "hvm",
      boot: { firmware: "seabios" },
      cdroms: [join(dir, "none.iso")],
    }, HOST);
    await assert.rejects(
      resolveVmmConfig(missing, {
        runDir: join(dir, "run"),
        logFile: join(dir, "hvm.log"),
        volumes: volumes(dir),
        ...HOST,
      }),
      DefinitionError,
    );
  });
});
