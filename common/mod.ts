/**
 * The shared vocabulary at the bottom of the layers (only ffi/ is lower, and common/
 * imports nothing of it): what every layer says the same way and none owns.
 *
 * - errors.ts: `DenovisorError` and its codes, mapped to HTTP statuses and CLI exit
 *   statuses in one table each (`HTTP_STATUS`, `EXIT_STATUS`); nothing is decided from a
 *   message.
 * - units.ts: `parseSize` ("512M", "1.5GiB") with its own `SizeError`, `formatSize`.
 * - validators.ts: the one rule each for MACs, interface names, disk serials, UUIDs and
 *   object names.
 * - enums.ts: transports, image formats, lifecycle actions, domain actions and states,
 *   console kinds, each listed once with its type.
 * - fields.ts: reading untrusted JSON objects field by field with JSON paths.
 * - persist.ts: the save/restore seam and `StateReader` for untrusted saved state.
 * - version.ts: `VERSION`.
 * - http/: the router, `ApiError` and the client for the APIs on unix sockets.
 *
 * Import the file you need (the CLI loads modules lazily); this module re-exports them
 * for the library.
 *
 * ```ts
 * import { DenovisorError, EXIT_STATUS, parseSize } from "./mod.ts";
 * try {
 *   parseSize("12X", "--memory");
 * } catch (error) {
 *   if (error instanceof DenovisorError) console.log(EXIT_STATUS[error.code]); // 6
 * }
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./units.ts";
export * from "./validators.ts";
export * from "./enums.ts";
export * from "./fields.ts";
export * from "./persist.ts";
export * from "./version.ts";
