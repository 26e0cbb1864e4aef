/**
 * The error for images whose contents or options are wrong (not I/O failures).
 *
 * @module
 */

import { DiskError } from "../disk.ts";

/**
 * An image's contents or options are wrong: a malformed header, metadata out of range, a
 * backing loop, an unsupported feature. It is a `DiskError`, so a device answering a guest
 * request treats it as an I/O error.
 */
export class ImageError extends DiskError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause, code: "invalid" });
  }
}
