/**
 * Firmware boot: wall time from process start to the boot sector's first line on the
 * serial port and to its exit, Denovisor (`run --firmware`) against QEMU (`-machine pc`),
 * both with Debian's SeaBIOS and the same raw disk holding the firmware tests' boot
 * sector (tests/firmware_support.ts) on virtio-blk; median of interleaved runs.
 *
 * QEMU gets what Denovisor gives SeaBIOS by default: the serial console as sercon
 * (`etc/sercon-port`) and no boot menu wait (`etc/show-boot-menu=0`).
 *
 * Usage: deno run -A bench/firmware_boot.ts [--runs N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_FIRMWARE } from "../core/boot/firmware_rom.ts";
import { withImages } from "../tests/firmware_support.ts";
import {
  CouldNotMeasureError,
  denovisorArgs,
  fixed,
  median,
  requireKvm,
  runBenchmark,
  type VmmCommand,
} from "./_support.ts";

const FIRST_LINE = "boot sector: hello";
const TIMEOUT_MS = 180_000;

/** Denovisor booting `disk` through its firmware (successStatus: the boot sector's 7). */
function denovisor(disk: string): VmmCommand {
  return {
    name: "Denovisor",
    command: Deno.execPath(),
    args: denovisorArgs("run", "--firmware", "--disk", `${disk},format=raw`),
    successStatus: 7,
  };
}

function qemu(disk: string): VmmCommand {
  return {
    name: "QEMU",
    command: "qemu-system-x86_64",
    args: [
      ...["-accel", "kvm", "-machine", "pc", "-m", "128", "-bios", DEFAULT_FIRMWARE],
      ...["-drive", `file=${disk},format=raw,if=virtio`],
      ...["-fw_cfg", "name=etc/sercon-port,string=0x3f8"],
      ...["-fw_cfg", "name=etc/show-boot-menu,string=0"],
      ...["-device", "isa-debug-exit,iobase=0xf4,iosize=1"],
      ...["-display", "none", "-vga", "none", "-net", "none", "-serial", "stdio"],
    ],
    successStatus: (7 << 1) | 1,
  };
}

/** Seconds to the first line and to the exit of one boot. */
async function boot(vmm: VmmCommand): Promise<{ firstLine: number; exit: number }> {
  const start = performance.now();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(vmm.command, {
      args: vmm.args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CouldNotMeasureError(`${vmm.command} is not installed; install it and run again`);
    }
    throw error;
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  let firstLine: number | undefined;
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (firstLine === undefined && text.includes(FIRST_LINE)) {
      firstLine = (performance.now() - start) / 1000;
    }
  }
  const status = await child.status;
  clearTimeout(timer);
  const exit = (performance.now() - start) / 1000;
  if (status.code !== vmm.successStatus || firstLine === undefined) {
    throw new CouldNotMeasureError(
      `${vmm.name} ended with status ${status.code} after ${fixed(exit)} s ` +
        `(wanted ${vmm.successStatus} and '${FIRST_LINE}'):\n${text}`,
    );
  }
  return { firstLine, exit };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new CouldNotMeasureError("--runs takes a whole number above 0");
  }
  await requireKvm();
  await withImages(async ({ disk }) => {
    const vmms = [denovisor(disk), qemu(disk)];
    const results = vmms.map(() => [] as { firstLine: number; exit: number }[]);
    for (let run = 0; run < runs; run++) {
      for (const [i, vmm] of vmms.entries()) results[i].push(await boot(vmm));
    }
    console.log(
      `firmware boot: SeaBIOS to the boot sector on virtio-blk, ${runs} interleaved runs`,
    );
    for (const [i, vmm] of vmms.entries()) {
      const first = median(results[i].map((r) => r.firstLine));
      const exit = median(results[i].map((r) => r.exit));
      const all = results[i].map((r) => fixed(r.firstLine)).join(", ");
      console.log(
        `  ${vmm.name.padEnd(10)} first line ${fixed(first)} s, exit ${
          fixed(exit)
        } s (first lines: ${all})`,
      );
    }
  });
}

if (import.meta.main) await runBenchmark("firmware_boot", main);
