/**
 * Domain definitions: validation at the edge, conflict checks against other domains,
 * resolution into a VMM config, and xl.cfg import.
 *
 * @example
 * ```ts
 * const definition = validateDefinition(JSON.parse(text)); // throws DefinitionError
 * checkConflicts(definition, others);
 * const config = await resolveVmmConfig(definition, { runDir, logFile, volumes });
 * // An xl.cfg file instead of JSON:
 * if (looksLikeXlCfg(text)) validateDefinition(parseXlCfg(text, { baseDir }), { baseDir });
 * ```
 *
 * @module
 */

export {
  checkConflicts,
  DefinitionError,
  definitionMemoryBytes,
  DomainConflictError,
  validateDefinition,
  type ValidateOptions,
} from "./definition.ts";
export type { DiskPathResolver, OtherDomain } from "./conflicts.ts";
export {
  probeFormat,
  type ResolvedVolume,
  type ResolveOptions,
  resolveVmmConfig,
  type VolumeLookup,
} from "./resolve.ts";
export { looksLikeXlCfg, parseXlCfg, XlCfgError, type XlCfgOptions } from "./xl_cfg.ts";
export { formatXlCfg } from "./xl_cfg_format.ts";
