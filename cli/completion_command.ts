/**
 * `denovisor completion bash|zsh|fish`: completion scripts for the shells, driven by the
 * very completer the REPL uses. Each script calls the hidden `denovisor __complete`
 * with the line and the cursor; that runs `completeLine` over the same command specs
 * and asks the daemon (through `$DENOVISOR_SOCKET` or the default socket) for domain,
 * pool and volume names, so the shell and the REPL can never disagree.
 *
 * @module
 */

import { ApiClient } from "../manager/api_client.ts";
import { resolvePaths } from "../manager/paths.ts";
import { CLIENT_EXIT } from "./output.ts";
import { completionSpecs } from "./repl/commands.ts";
import { CachedNames, completeLine, type CompletionSpec } from "./repl/completion.ts";
import { UsageError } from "./usage_error.ts";

export const COMPLETION_USAGE = `Usage: denovisor completion bash|zsh|fish

Prints a completion script for the shell. Install it with, for example:
  denovisor completion bash > /etc/bash_completion.d/denovisor
  denovisor completion zsh > "\${fpath[1]}/_denovisor"
  denovisor completion fish > ~/.config/fish/completions/denovisor.fish
Commands, options, and domain, pool and volume names (from the running daemon) complete
as in the REPL.`;

/** Top-level commands the REPL does not run but the shell does. */
const SHELL_ONLY: CompletionSpec[] = [
  ...["daemon", "repl", "run", "check", "version", "install", "img"].map((name) => ({
    names: [name],
    options: { "--help": "flag" as const },
    args: [],
  })),
  { names: ["completion"], options: {}, args: [] },
];

/** The specs the shell completes against: the REPL's, without its own words. */
export function shellSpecs(): CompletionSpec[] {
  const repl = completionSpecs().filter((spec) =>
    !spec.names.some((name) => ["history", "exit", "quit"].includes(name))
  );
  return [...repl, ...SHELL_ONLY];
}

const BASH =
  `# denovisor completion for bash: denovisor completion bash > /etc/bash_completion.d/denovisor
_denovisor() {
  local IFS=$'\\n'
  COMPREPLY=($(denovisor __complete --cursor "\${COMP_POINT}" -- "\${COMP_LINE}" 2>/dev/null))
}
complete -o default -F _denovisor denovisor
`;

const ZSH = `#compdef denovisor
# denovisor completion for zsh: denovisor completion zsh > "\${fpath[1]}/_denovisor"
_denovisor() {
  local -a candidates
  candidates=("\${(@f)$(denovisor __complete --cursor "\${#LBUFFER}" -- "\${BUFFER}" 2>/dev/null)}")
  compadd -Q -- "\${candidates[@]}"
}
compdef _denovisor denovisor
`;

const FISH =
  `# denovisor completion for fish: denovisor completion fish > ~/.config/fish/completions/denovisor.fish
complete -c denovisor -f -a '(set -l line (commandline -cp); denovisor __complete --cursor (string length -- "$line") -- "$line" 2>/dev/null)'
`;

const SCRIPTS: Record<string, string> = { bash: BASH, zsh: ZSH, fish: FISH };

/** `denovisor completion SHELL`. */
export function completionCommand(args: string[]): number {
  if (args.length === 1 && ["--help", "-h"].includes(args[0])) {
    console.log(COMPLETION_USAGE);
    return CLIENT_EXIT.OK;
  }
  const script = args.length === 1 ? SCRIPTS[args[0]] : undefined;
  if (script === undefined) {
    throw new UsageError(
      `completion: expected one of bash, zsh, fish${args[0] ? `, not '${args[0]}'` : ""}`,
    );
  }
  Deno.stdout.writeSync(new TextEncoder().encode(script));
  return CLIENT_EXIT.OK;
}

/**
 * `denovisor __complete --cursor N -- LINE`: prints the candidates for the word under
 * the cursor, one per line, already filtered by what is typed. LINE starts with the
 * program's name, as the shells pass it.
 */
export async function completeCommand(args: string[]): Promise<number> {
  const separator = args.indexOf("--");
  const line = separator >= 0 ? args.slice(separator + 1).join(" ") : "";
  const cursorAt = args.indexOf("--cursor");
  const cursor = cursorAt >= 0 && cursorAt < separator ? Number(args[cursorAt + 1]) : line.length;
  for (const candidate of await candidatesFor(line, cursor)) console.log(candidate);
  return CLIENT_EXIT.OK;
}

/**
 * The candidates for a shell line (program name first) at `cursor`; names come from the
 * daemon at `socket` (by default the one `$DENOVISOR_SOCKET` or the system path names).
 */
export async function candidatesFor(
  line: string,
  cursor: number,
  socket = resolvePaths().socket,
): Promise<string[]> {
  const program = /^\s*\S+\s*/.exec(line)?.[0] ?? "";
  if (!Number.isSafeInteger(cursor) || cursor < program.length) return [];
  const rest = line.slice(program.length, Math.min(cursor, line.length));
  using client = new ApiClient(socket);
  const names = new CachedNames((path) => client.get(path));
  const { start, candidates } = await completeLine(rest, rest.length, shellSpecs(), names);
  const typed = rest.slice(start);
  return [...new Set(candidates)].filter((candidate) => candidate.startsWith(typed)).sort();
}
