/**
 * File URL helpers for the layering test (node:url's, typed for paths).
 *
 * @module
 */

import { fileURLToPath, pathToFileURL } from "node:url";

/** The path of a file: URL (a string or a URL). */
export function fromFileUrl(url: string | URL): string {
  return fileURLToPath(url);
}

/** The file: URL of an absolute path, as a string. */
export function toFileUrl(path: string): string {
  return pathToFileURL(path).href;
}
