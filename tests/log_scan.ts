/**
 * Finds uncaught errors in what a daemon or VMM printed: Deno reports one as
 * "error: Uncaught ..." and the process dies, or (in a Worker) the message is all there is.
 * A test whose daemon or VMM logged one fails even if its own assertions passed.
 *
 * @module
 */

/** One output to scan: a process's stdout and stderr, or a log file. */
export interface LoggedText {
  /** Where the text came from, for the failure message. */
  source: string;
  text: string;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const UNCAUGHT = /^.*\berror: Uncaught\b.*$/gm;

/** A failure message quoting every uncaught error in `logs` with a few lines after it, or undefined. */
export function uncaughtErrors(logs: LoggedText[]): string | undefined {
  const found: string[] = [];
  for (const { source, text } of logs) {
    const plain = text.replace(ANSI, "");
    for (const match of plain.matchAll(UNCAUGHT)) {
      const after = plain.slice(match.index).split("\n").slice(0, 6).join("\n");
      found.push(`${source}:\n${after}`);
    }
  }
  if (found.length === 0) return undefined;
  return `An uncaught error was logged (a crash the test did not see):\n${found.join("\n\n")}`;
}

/** The `*.log` files directly in `dir` as texts to scan (none if there is no such directory). */
export async function logFiles(dir: string): Promise<LoggedText[]> {
  const logs: LoggedText[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.endsWith(".log")) continue;
      const source = `${dir}/${entry.name}`;
      logs.push({ source, text: await Deno.readTextFile(source).catch(() => "") });
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return logs;
}
