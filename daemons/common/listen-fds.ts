/**
 * Socket activation: the fds systemd passes (sd_listen_fds(3), systemd.socket(5)).
 *
 * systemd passes fds 3 … 3+LISTEN_FDS-1, names them in LISTEN_FDNAMES (colon-separated,
 * from FileDescriptorName=) and sets LISTEN_PID to the receiving process. The order of the
 * fds is not guaranteed, so they are looked up by name. LISTEN_* are removed from the
 * environment afterwards so that children do not inherit them (as sd_listen_fds(1) does).
 */
import { DispatchError } from './errors.js';

/** The first passed fd (SD_LISTEN_FDS_START). */
export const SD_LISTEN_FDS_START = 3;

/** Passed fds by name; a name may carry several fds. */
export type ListenFds = Map<string, number[]>;

/**
 * Parses LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES from `env` (which it then cleans).
 * Returns an empty map when nothing was passed (LISTEN_FDS unset, or meant for another pid).
 *
 * @param env the environment (process.env), modified: LISTEN_* removed.
 * @param pid this process's pid (process.pid).
 * @throws DispatchError LISTEN_FDS_INVALID when the variables are malformed.
 */
export function parseListenFds(env: NodeJS.ProcessEnv, pid: number): ListenFds {
  const fdsVar = env.LISTEN_FDS;
  const pidVar = env.LISTEN_PID;
  const namesVar = env.LISTEN_FDNAMES;
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  const out: ListenFds = new Map();
  if (fdsVar === undefined) return out;
  if (pidVar === undefined || !/^[1-9][0-9]*$/.test(pidVar)) {
    throw new DispatchError('LISTEN_FDS_INVALID', `failed to parse LISTEN_PID '${pidVar ?? ''}': not a pid`);
  }
  if (Number(pidVar) !== pid) return out; // meant for another process (our parent)
  if (!/^(0|[1-9][0-9]{0,3})$/.test(fdsVar)) {
    throw new DispatchError('LISTEN_FDS_INVALID', `failed to parse LISTEN_FDS '${fdsVar}': not a small count`);
  }
  const count = Number(fdsVar);
  const names = namesVar === undefined || namesVar === '' ? [] : namesVar.split(':');
  if (names.length !== 0 && names.length !== count) {
    throw new DispatchError('LISTEN_FDS_INVALID', `failed to parse LISTEN_FDNAMES: ${names.length} names for ${count} fds`);
  }
  for (let i = 0; i < count; i++) {
    const name = names[i] ?? 'unknown';
    const list = out.get(name) ?? [];
    list.push(SD_LISTEN_FDS_START + i);
    out.set(name, list);
  }
  return out;
}

/**
 * The one fd passed under `name`.
 *
 * @throws DispatchError LISTEN_FDS_MISSING when there is none, or more than one.
 */
export function requireFd(fds: ListenFds, name: string, unit: string): number {
  const list = fds.get(name) ?? [];
  if (list.length !== 1) {
    const have = [...fds.keys()].join(', ') || 'none';
    throw new DispatchError('LISTEN_FDS_MISSING', `failed to find the socket-activated fd '${name}': ${list.length} passed (names passed: ${have}); start the daemon through ${unit} with FileDescriptorName=${name}`);
  }
  return list[0]!;
}
