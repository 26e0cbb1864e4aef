/**
 * Reading a definition file for `define`, `create` and `edit --file`: the JSON definition
 * (docs/domain.md) or a Xen xl.cfg file, told apart by their content. Both are validated
 * here with the daemon's own validator, so a bad file fails fast with the field's path
 * (exit status 6), and relative paths are resolved against the file's directory (the
 * daemon, which runs elsewhere, refuses relative paths).
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import type { DomainDefinition } from "../manager/api_types.ts";
import { validateDefinition } from "../manager/domain/definition.ts";
import { findDuplicateKey } from "../manager/domain/json_duplicates.ts";
import { looksLikeXlCfg, parseXlCfg } from "../manager/domain/xl_cfg.ts";
import { visibleText } from "../manager/domain/xl_cfg_syntax.ts";
import type { VerbContext } from "./domain_verb.ts";
import { InvalidInputError } from "./output.ts";
import { readTextInput } from "./text_input.ts";

/** The largest definition file read: a real one is a few KiB. */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

/** A definition read from a file, and what kind of file it was. */
export interface DefinitionFile {
  definition: DomainDefinition;
  format: "json" | "xl.cfg";
}

/** Reads and validates `path`; throws InvalidInputError with the file's name on problems. */
export async function readDefinitionFile(
  path: string,
  onWarning: (message: string) => void = () => {},
): Promise<DefinitionFile> {
  let text: string;
  try {
    text = await readTextInput(path, MAX_DEFINITION_BYTES);
  } catch (error) {
    throw new InvalidInputError(
      `Cannot read ${path}: ${(error as Error).message}; give the path of a JSON or xl.cfg ` +
        `definition`,
    );
  }
  return parseDefinitionText(text, path, onWarning);
}

/** The definition in `path` for a verb: its warnings go to the verb's stderr as "warning: ...". */
export async function readVerbDefinition(
  context: VerbContext,
  path: string,
): Promise<DomainDefinition> {
  const warn = (message: string) => context.io.err(`warning: ${message}`);
  return (await readDefinitionFile(path, warn)).definition;
}

/** Parses a definition from `text` that came from `path` (JSON or xl.cfg). */
export function parseDefinitionText(
  text: string,
  path: string,
  onWarning: (message: string) => void = () => {},
  baseDir: string = dirname(resolve(path)),
): DefinitionFile {
  let input: unknown;
  let format: DefinitionFile["format"];
  if (/^\s*[{[]/.test(text) || !looksLikeXlCfg(text)) {
    format = "json";
    try {
      input = JSON.parse(text);
    } catch (error) {
      throw new InvalidInputError(
        `${path}: not valid JSON (${visibleText((error as Error).message)}) nor an xl.cfg ` +
          `file; see docs/domain.md for the format`,
      );
    }
    // JSON.parse keeps the last of two equal keys; the file's reader may see the first.
    const duplicate = findDuplicateKey(text);
    if (duplicate) {
      const where = duplicate.path === "" ? "" : ` in ${duplicate.path}`;
      throw new InvalidInputError(
        `${path}: "${visibleText(duplicate.key)}" is given twice${where}; give each key once`,
      );
    }
  } else {
    format = "xl.cfg";
    try {
      input = parseXlCfg(text, {
        baseDir,
        onWarning: (message) => onWarning(`${path}: ${message}`),
      });
    } catch (error) {
      throw new InvalidInputError(`${path}: ${(error as Error).message}`);
    }
  }
  return { definition: forDaemon(input, baseDir, path), format };
}

/**
 * Validates `input` and returns it with absolute paths, leaving the uuid and MACs to the
 * daemon when the file did not give them (so that redefining a domain keeps its own).
 */
function forDaemon(input: unknown, baseDir: string, path: string): DomainDefinition {
  let normalized: DomainDefinition;
  try {
    normalized = validateDefinition(input, { baseDir });
  } catch (error) {
    throw new InvalidInputError(`${path}: ${(error as Error).message}`);
  }
  const given = input as Partial<DomainDefinition>;
  if (given.uuid === undefined) delete normalized.uuid;
  normalized.nics?.forEach((nic, index) => {
    if (given.nics?.[index]?.mac === undefined) delete nic.mac;
  });
  return normalized;
}
