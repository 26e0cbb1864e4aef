/**
 * Parsing of console specifications as users write them (`--console stdio`).
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** A validated console specification. */
export type ConsoleSpec =
  | { readonly kind: "stdio" }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "null" };

/** Thrown for a console specification that is not one of the accepted forms. */
export class ConsoleSpecError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

const FILE_PREFIX = "file:";

/** Parses `"stdio"`, `"file:PATH"` or `"null"`. */
export function parseConsoleSpec(text: string): ConsoleSpec {
  if (text === "stdio") return { kind: "stdio" };
  if (text === "null") return { kind: "null" };
  if (text.startsWith(FILE_PREFIX)) {
    const path = text.slice(FILE_PREFIX.length);
    if (path.length === 0) {
      throw new ConsoleSpecError(
        'Console "file:" has no path; write it as file:PATH, e.g. file:/var/log/vm.log',
      );
    }
    return { kind: "file", path };
  }
  throw new ConsoleSpecError(
    `Unknown console "${text}"; use stdio, file:PATH or null`,
  );
}

/** Formats a spec back into the text `parseConsoleSpec()` accepts. */
export function formatConsoleSpec(spec: ConsoleSpec): string {
  return spec.kind === "file" ? `${FILE_PREFIX}${spec.path}` : spec.kind;
}
