/**
 * The farm's fields of a domain definition: `"ha": true` (restart it on another host
 * when its host is lost) and `"placement": {"host", "labels", "antiAffinity"}` (where
 * `start` may put it). A daemon without a farm stores and ignores them.
 *
 * @module
 */

import {
  DefinitionError,
  readBoolean,
  readObject,
  readString,
} from "../domain/definition_error.ts";
import { OBJECT_NAME_PATTERN, OBJECT_NAME_RULE } from "../../common/validators.ts";

/** Where a domain may be placed in a farm. */
export interface PlacementRule {
  /** Only this host. */
  host?: string;
  /** Only hosts whose labels include all of these. */
  labels?: Record<string, string>;
  /** Never on a host that runs another domain of the same group. */
  antiAffinity?: string;
}

/** The farm fields of a definition object, validated (absent fields stay absent). */
export function readFarmFields(
  object: Record<string, unknown>,
): { ha?: boolean; placement?: PlacementRule } {
  const ha = readBoolean(object, "ha", "");
  if (object.placement === undefined) return ha === undefined ? {} : { ha };
  const rule = readObject(object.placement, "placement", ["host", "labels", "antiAffinity"]);
  const placement: PlacementRule = {};
  const host = readString(rule, "host", "placement");
  if (host !== undefined) placement.host = checkName(host, "placement.host");
  const group = readString(rule, "antiAffinity", "placement");
  if (group !== undefined) placement.antiAffinity = checkName(group, "placement.antiAffinity");
  if (rule.labels !== undefined) {
    const labels = readObject(rule.labels, "placement.labels", Object.keys(rule.labels ?? {}));
    placement.labels = {};
    for (const [key, value] of Object.entries(labels)) {
      if (typeof value !== "string") {
        throw new DefinitionError(`placement.labels.${key}`, "expected a string");
      }
      placement.labels[checkName(key, "placement.labels")] = value;
    }
  }
  return ha === undefined ? { placement } : { ha, placement };
}

function checkName(value: string, path: string): string {
  if (!OBJECT_NAME_PATTERN.test(value)) {
    throw new DefinitionError(path, `'${value}' is not a valid name; use ${OBJECT_NAME_RULE}`);
  }
  return value;
}
