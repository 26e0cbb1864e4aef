/**
 * Helpers shared by the benchmarks: where things are, building what a benchmark needs,
 * statistics and the one way a benchmark reports that it could not measure.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The repository root (the folder above bench/). */
export const REPO_ROOT: string = fileURLToPath(new URL("../", import.meta.url)).replace(/\/$/, "");
/** Where benchmarks put what they compile (gitignored). */
export const BUILD_DIR = `${REPO_ROOT}/bench/.build`;
/** The test guests, as guests/build.sh builds them. */
export const GUEST_DIR = `${REPO_ROOT}/guests/build`;

/** A benchmark could not take its measurement (missing tool, VM failure, bad output). */
export class CouldNotMeasureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CouldNotMeasureError";
  }
}

/** How to start one VMM, and the exit status that means its guest did what was asked. */
export interface VmmCommand {
  name: string;
  command: string;
  args: string[];
  successStatus: number;
}

/** The arguments to Deno that run `denovisor <args>` from source (no compiled binary here). */
export function denovisorArgs(...args: string[]): string[] {
  return ["run", "-A", `${REPO_ROOT}/main.ts`, ...args];
}

/** How {@link qemuGuestArgs} sets QEMU up. */
export interface QemuGuestOptions {
  /** The guest's command line (`-append`); none when undefined. */
  append?: string;
  /** Guest RAM in MiB (default 256). */
  memoryMiB?: number;
  /** Where the serial console goes (default "stdio"). */
  serial?: string;
}

/**
 * QEMU's arguments to boot a test guest (a PVH kernel) on KVM with no default devices and
 * the debug-exit device: a guest exiting with status s makes QEMU exit with (s << 1) | 1.
 * Add the devices under test after them.
 */
export function qemuGuestArgs(kernel: string, options: QemuGuestOptions = {}): string[] {
  const { append, memoryMiB = 256, serial = "stdio" } = options;
  return [
    ...["-accel", "kvm", "-m", `${memoryMiB}`, "-nographic", "-nodefaults", "-no-reboot"],
    ...["-serial", serial, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
    ...["-kernel", kernel],
    ...(append === undefined ? [] : ["-append", append]),
  ];
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("Cannot take the median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** `value` with `digits` decimals, for tables. */
export function fixed(value: number, digits = 2): string {
  return value.toFixed(digits);
}

/** The output of a finished command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command args` to completion, capturing its output. */
export async function runQuiet(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<CommandResult> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(command, {
      args,
      cwd: options.cwd ?? REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CouldNotMeasureError(`${command} is not installed; install it and run again`);
    }
    throw error;
  }
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A finished command's wall time (spawn to exit), exit status and standard output. */
export interface TimedOutput {
  seconds: number;
  code: number;
  stdout: string;
}

/** Runs `command args` to completion with stdin and stderr closed, timing it. */
export async function timedOutput(
  command: string,
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<TimedOutput> {
  const started = performance.now();
  const { code, stdout } = await new Deno.Command(command, {
    args,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  return { seconds, code, stdout: new TextDecoder().decode(stdout) };
}

/** Writes a disk image of `bytes` random bytes to `path` (no zero pages to short-cut). */
export async function writeRandomImage(path: string, bytes: number): Promise<void> {
  const image = new Uint8Array(bytes);
  // getRandomValues fills at most 64 KiB at a time.
  for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(image.subarray(i, i + 65536));
  await Deno.writeFile(path, image);
}

/** Builds the test guests if `guests/build/<name>.elf` is missing; returns its path. */
export async function ensureGuest(name: string): Promise<string> {
  const path = `${GUEST_DIR}/${name}.elf`;
  if (await exists(path)) return path;
  const result = await runQuiet("bash", [`${REPO_ROOT}/guests/build.sh`]);
  if (result.code !== 0 || !(await exists(path))) {
    throw new CouldNotMeasureError(
      `building the test guests failed; run 'bash guests/build.sh' to see why\n${result.stderr}`,
    );
  }
  return path;
}

/**
 * Compiles `bench/c/<name>.c` into bench/.build/<name> with gcc -O2, unless the binary is
 * newer than the source; returns the binary's path.
 */
export async function buildC(name: string): Promise<string> {
  const source = `${REPO_ROOT}/bench/c/${name}.c`;
  const binary = `${BUILD_DIR}/${name}`;
  const sourceTime = (await Deno.stat(source)).mtime?.getTime() ?? 0;
  const binaryTime = await Deno.stat(binary).then((s) => s.mtime?.getTime() ?? 0, () => -1);
  if (binaryTime > sourceTime) return binary;
  await Deno.mkdir(BUILD_DIR, { recursive: true });
  const result = await runQuiet("gcc", [
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-o",
    binary,
    source,
  ]);
  if (result.code !== 0) {
    throw new CouldNotMeasureError(`gcc could not compile ${source}:\n${result.stderr}`);
  }
  return binary;
}

/** Fails unless /dev/kvm can be opened for reading and writing. */
export async function requireKvm(): Promise<void> {
  try {
    (await Deno.open("/dev/kvm", { read: true, write: true })).close();
  } catch (error) {
    throw new CouldNotMeasureError(
      `Cannot open /dev/kvm (${error}); run on a host with KVM, as root or in the kvm group`,
    );
  }
}

/**
 * Runs a benchmark's main function: a CouldNotMeasureError (or any other error) is printed
 * and the process exits 1, so run_all.sh and CI see that nothing was measured.
 */
export async function runBenchmark(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = error instanceof CouldNotMeasureError ? error.message : String(error);
    console.error(`${name}: could not measure: ${message}`);
    Deno.exit(1);
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}
