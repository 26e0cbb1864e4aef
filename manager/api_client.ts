/**
 * The client side of the daemon API, used by the CLI verbs and the REPL. It is the
 * common HTTP client over a unix socket (common/http/client.ts), shared with the
 * daemon's client of each VMM's control API.
 *
 * @module
 */

export { ApiClient, ApiClientError } from "../common/http/client.ts";
