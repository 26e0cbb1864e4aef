/**
 * The volume and snapshot name rule, shared by requests and by pool listings (a file of
 * another name in a pool's directory is not a volume).
 *
 * @module
 */

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

/** Whether `name` may name a volume or a snapshot. */
export function isVolumeName(name: string): boolean {
  return NAME.test(name);
}
