/**
 * The unprivileged user and group the daemon's VMMs run as, as libvirt runs QEMU as
 * `qemu`: the `denovisor` system account (`denovisor install` creates it), or without
 * one the fixed ids 64770:64770 (no account is needed: the VMM is handed every file it
 * uses, and its jail has no /etc). `DENOVISOR_VMM_USER=UID:GID` in the daemon's
 * environment chooses others.
 *
 * All VMMs share the one user: each is alone in its jail and PID namespace, is handed
 * only its own domain's files and, under its seccomp filter, can signal no process but
 * itself.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** The account name `denovisor install` creates. */
export const VMM_ACCOUNT = "denovisor";
/** The ids used when there is no such account (Debian leaves 60000-64999 to sites). */
export const FALLBACK_VMM_ID = 64770;

/** Who a VMM runs as. */
export interface VmmUser {
  uid: number;
  gid: number;
  /** Where the ids came from, for the log: "account denovisor", "DENOVISOR_VMM_USER"... */
  source: string;
}

/** A DENOVISOR_VMM_USER that is not UID:GID. */
export class VmmUserError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** The `name` line of /etc/passwd as uid and gid, or undefined. */
export function accountIds(name: string, passwd: string): { uid: number; gid: number } | undefined {
  for (const line of passwd.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === name && fields.length >= 4) {
      const uid = Number(fields[2]);
      const gid = Number(fields[3]);
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
    }
  }
  return undefined;
}

/** The user of the daemon's VMMs (see the module doc). */
export function vmmUser(env: string | undefined = Deno.env.get("DENOVISOR_VMM_USER")): VmmUser {
  if (env !== undefined && env !== "") {
    const match = env.match(/^(\d{1,10}):(\d{1,10})$/);
    const uid = Number(match?.[1]);
    const gid = Number(match?.[2]);
    if (!match || uid === 0 || gid === 0 || uid > 0xfffffffe || gid > 0xfffffffe) {
      throw new VmmUserError(
        `DENOVISOR_VMM_USER='${env}' must be UID:GID, neither of them 0 (root)`,
      );
    }
    return { uid, gid, source: "DENOVISOR_VMM_USER" };
  }
  let passwd = "";
  try {
    passwd = Deno.readTextFileSync("/etc/passwd");
  } catch {
    // no account database: the fallback ids
  }
  const account = accountIds(VMM_ACCOUNT, passwd);
  if (account !== undefined && account.uid !== 0 && account.gid !== 0) {
    return { ...account, source: `account ${VMM_ACCOUNT}` };
  }
  return { uid: FALLBACK_VMM_ID, gid: FALLBACK_VMM_ID, source: "no denovisor account" };
}
