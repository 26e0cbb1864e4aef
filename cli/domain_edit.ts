/**
 * `denovisor edit NAME`: the domain's JSON definition in $VISUAL/$EDITOR, sent back through
 * PUT (the daemon validates it); on a refusal the message is shown and the user may edit
 * again, as `virsh edit` does. `edit NAME --file F` replaces the definition from a file
 * without an editor.
 *
 * @module
 */

import { ApiClientError } from "../manager/api_client.ts";
import { DenovisorError } from "../common/errors.ts";
import { UsageError } from "./usage_error.ts";
import type { DomainDefinition, DomainInfo } from "../manager/api_types.ts";
import { parseDefinitionText, readVerbDefinition } from "./domain_file.ts";
import {
  domainPath,
  type DomainVerb,
  reportDomain,
  stringOption,
  type VerbContext,
} from "./domain_verb.ts";
import {
  CLIENT_EXIT,
  exitStatusForError,
  formatJson,
  InvalidInputError,
  printable,
} from "./output.ts";

const edit: DomainVerb = {
  name: "edit",
  summary: "Edit a domain's definition in $EDITOR (validated before it is saved)",
  help: `Usage: denovisor edit NAME [--file FILE] [--config | --current] [--json]

Opens the JSON definition of domain NAME (defaults filled in) in $VISUAL, $EDITOR or vi.
When the editor exits, the definition is sent to the daemon, which validates it; if it is
refused, the message is shown and you may edit again. Leaving the file unchanged changes
nothing. A running domain uses the new definition from its next start (--config, the
default; 'list', 'info' and 'vcpu-count' then show what differs). A definition cannot
change under a running guest, so --live is refused, and --current (live while the domain
runs, config when not) is refused on a running domain.

Options:
  --file FILE   Replace the definition with FILE (JSON or xl.cfg) without an editor
  --config      Change the definition from the domain's next start (the default)
  --current     As --config on a shut-off domain; refused on a running one
  --json        Print the domain's info as JSON afterwards`,
  options: {
    file: { type: "string" },
    live: { type: "boolean" },
    config: { type: "boolean" },
    current: { type: "boolean" },
  },
  json: true,
  args: ["domain"],
  async run(context, values, [name]) {
    await refuseLiveEdit(context, name, values);
    const file = stringOption(values, "file");
    let info: DomainInfo;
    if (file !== undefined) {
      info = await save(context, name, await readVerbDefinition(context, file));
    } else {
      const edited = await editInteractively(context, name);
      if (edited === undefined) return CLIENT_EXIT.OK;
      if (typeof edited === "number") return edited;
      info = edited;
    }
    reportDomain(
      context,
      info,
      values.json === true,
      `Domain '${printable(info.name)}' definition updated`,
    );
    return CLIENT_EXIT.OK;
  },
};

/** virsh's --live and --current, which an edit cannot honour on a running guest. */
async function refuseLiveEdit(
  context: VerbContext,
  name: string,
  values: Record<string, unknown>,
): Promise<void> {
  if (values.live) {
    throw new UsageError(
      "edit --live: a running guest's definition cannot change in place; edit changes it " +
        "from the next start (--config, the default)",
    );
  }
  if (values.current && values.config) {
    throw new UsageError("edit: --current is --live or --config; give it alone");
  }
  if (values.current) {
    const info = await context.client.get<DomainInfo>(domainPath(name));
    if (info.state !== "shutoff") {
      throw new ConflictError(
        `edit --current: domain '${printable(name)}' is ${info.state}, and a running guest's ` +
          `definition cannot change in place; use --config to change it from its next start`,
      );
    }
  }
}

/** A request that clashes with the domain's state (exit status 5, as the daemon's 409). */
class ConflictError extends DenovisorError {
  constructor(message: string) {
    super("conflict", message);
  }
}

async function save(
  context: VerbContext,
  name: string,
  definition: DomainDefinition,
): Promise<DomainInfo> {
  if (definition.name !== name) {
    throw new InvalidInputError(
      `name: '${printable(definition.name)}' differs from the domain's name '${
        printable(name)
      }'; ` +
        `renaming is not supported (define a new domain and undefine this one)`,
    );
  }
  return await context.client.put<DomainInfo>(domainPath(name), definition);
}

/**
 * The edit loop: the new info when saved, undefined when unchanged, an exit status when
 * the user gave up after a refusal.
 */
async function editInteractively(
  context: VerbContext,
  name: string,
): Promise<DomainInfo | number | undefined> {
  const current = await context.client.get<DomainInfo>(domainPath(name));
  const original = formatJson(current.definition) + "\n";
  const path = await Deno.makeTempFile({ prefix: `denovisor-${current.name}-`, suffix: ".json" });
  try {
    await Deno.writeTextFile(path, original);
    while (true) {
      await runEditor(path);
      const text = await Deno.readTextFile(path);
      if (text === original) {
        context.io.out(`Domain '${printable(name)}' definition unchanged`);
        return undefined;
      }
      try {
        const { definition } = parseDefinitionText(
          text,
          "edited definition",
          (message) => context.io.err(`warning: ${message}`),
          Deno.cwd(),
        );
        return await save(context, name, definition);
      } catch (error) {
        const refused = error instanceof InvalidInputError ||
          (error instanceof ApiClientError && ["invalid", "conflict"].includes(error.code));
        if (!refused) throw error;
        context.io.err(`error: ${(error as Error).message}`);
        if (!await askYesNo(context, "Edit again? [y/N] ")) {
          context.io.err(`Domain '${printable(name)}' is unchanged`);
          return exitStatusForError(error);
        }
      }
    }
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

/** Runs $VISUAL, $EDITOR or vi on `path` with the terminal. */
async function runEditor(path: string): Promise<void> {
  const command = (Deno.env.get("VISUAL") || Deno.env.get("EDITOR") || "vi").trim();
  const [program, ...args] = command.split(/\s+/);
  let status: Deno.CommandStatus;
  try {
    status = await new Deno.Command(program, {
      args: [...args, path],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
  } catch (error) {
    throw new Error(
      `Cannot run the editor '${command}': ${(error as Error).message}; ` +
        `set EDITOR, or use 'edit NAME --file FILE'`,
    );
  }
  if (!status.success) {
    throw new Error(
      `The editor '${command}' failed (exit status ${status.code}); the definition is unchanged`,
    );
  }
}

/** Asks a yes/no question on the terminal; no when stdin is not a terminal. */
async function askYesNo(context: VerbContext, question: string): Promise<boolean> {
  if (!Deno.stdin.isTerminal()) return false;
  await Deno.stdout.write(new TextEncoder().encode(question));
  let answer = "";
  const decoder = new TextDecoder();
  while (!answer.includes("\n")) {
    const bytes = await context.stdin(context.signal).catch(() => null);
    if (bytes === null) return false;
    answer += decoder.decode(bytes, { stream: true });
  }
  return /^\s*y(es)?\s*$/i.test(answer.split("\n")[0]);
}

/** The edit verb. */
export const EDIT_VERBS: DomainVerb[] = [edit];
