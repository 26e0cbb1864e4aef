/**
 * The socket calls the tap and packet-socket code use, re-exported from the one libc
 * table in ffi/ under the names this folder already uses.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";

export {
  AF_INET,
  AF_PACKET,
  ETH_P_ALL_BE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_RAW,
} from "../../ffi/libc_symbols.ts";

/** socket, bind and if_nametoindex from libc. */
export function socketCalls(): ReturnType<typeof libc> {
  return libc();
}
