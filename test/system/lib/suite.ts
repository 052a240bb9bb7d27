/**
 * Set-up shared by the system test files (over test/helpers: the sandbox, the .deb, until):
 * build (or reuse) the .deb, boot a sandbox for this file, install the package there; on
 * failure dump the dispatchd journal; always tear the sandbox down.
 *
 *   const sb = await installedSuite(t);   // undefined: the file was skipped, with the reason
 *   if (sb) { t.test(...) }
 */
import { basename, dirname, join } from 'node:path';
import { closeAfter, cannotBootReason, DEB_DIR, ensureDeb, install, installDeb, Sandbox, until, type TestLike } from '../../helpers/index.js';

export { DEB_DIR, install, until };

/** The units of the default suite, as an operator lists them. */
export const SERVICES = [
  'dispatchd-scoreboard.service',
  'dispatchd-main.service',
  'dispatchd-secondary@1.service',
  'dispatchd-secondary@2.service',
  'dispatchd-watchdog.service',
];
export const SOCKETS = [
  'dispatchd-main.socket',
  'dispatchd-main-mailbox.socket',
  'dispatchd-secondary@1.socket',
  'dispatchd-secondary-mailbox@1.socket',
  'dispatchd-secondary@2.socket',
  'dispatchd-secondary-mailbox@2.socket',
  'dispatchd-watchdog.socket',
];
export const UNITS = ['dispatchd.target', ...SERVICES, ...SOCKETS];
/** The daemons' services: SERVICES without the oneshot scoreboard keeper. */
export const DAEMONS = SERVICES.filter((u) => u !== 'dispatchd-scoreboard.service');

export interface SuiteOptions {
  /** Install the .deb right away (default true). */
  install?: boolean;
}

/**
 * Boots a sandbox for the calling test file and installs the .deb in it (unless
 * `install: false`: then the .deb is only copied to DEB_DIR). Returns undefined (and plans
 * the file as skipped, with the reason) when this machine cannot boot one. At the end of `t`
 * the units and the journal are dumped if it failed, and the sandbox is stopped.
 */
export async function installedSuite(t: TestLike & { plan(n: number, comment?: string): void }, importMetaUrl: string, opts: SuiteOptions = {}): Promise<Sandbox | undefined> {
  const reason = cannotBootReason();
  if (reason) {
    t.plan(0, `skip: system tests ${reason}`);
    return undefined;
  }
  // Boot while the .deb is built (or checked, under its lock, by the files started at the
  // same time): neither needs the other, and the files of the tier's first round all wait
  // on the one build.
  const [built, booted] = await Promise.allSettled([ensureDeb(), Sandbox.boot(importMetaUrl)]);
  if (booted.status === 'rejected') throw booted.reason;
  const sb = booted.value;
  closeAfter(t, sb);
  if (built.status === 'rejected') throw built.reason;
  const deb = built.value;
  if (opts.install ?? true) await installDeb(sb, deb);
  else await sb.copyIn(DEB_DIR, deb);
  return sb;
}

/**
 * Installs python3-dispatchd (built beside the .deb by ensureDeb) in the sandbox, as the
 * README says: `apt-get install ./dist/python3-dispatchd_*.deb`. Returns its file name.
 */
export async function installPythonPackage(sb: Sandbox): Promise<string> {
  const deb = await ensureDeb();
  const pydeb = join(dirname(deb), `python3-dispatchd_${basename(deb).split('_')[1]!}_all.deb`);
  await sb.copyIn(DEB_DIR, pydeb);
  await install(sb, `${DEB_DIR}/${basename(pydeb)}`);
  return basename(pydeb);
}

/** Waits until every listed unit reports ActiveState=`state`. */
export async function untilUnits(sb: Sandbox, units: string[], state: string, ms: number): Promise<void> {
  await until(`${units.join(' ')} to be ${state}`, ms, async () => {
    const out = await sb.out(`for u in ${units.map((u) => `'${u}'`).join(' ')}; do systemctl show -p ActiveState --value -- "$u"; done`);
    const states = out.trim().split('\n');
    return states.every((s) => s === state) ? true : undefined;
  });
}

/** The sandbox's clock now, as `journalctl --since` takes it. */
export async function journalNow(sb: Sandbox): Promise<string> {
  return (await sb.out('date "+%Y-%m-%d %H:%M:%S"')).trim();
}

/** The MainPID of each unit (0: not running). */
export async function mainPids(sb: Sandbox, units: string[]): Promise<number[]> {
  return Promise.all(units.map(async (u) => Number((await sb.show(u, 'MainPID')).MainPID)));
}

/** The journal lines of `unit` at priority err or worse ('' when none). */
export async function journalErrors(sb: Sandbox, unit: string): Promise<string> {
  return (await sb.out(`journalctl --no-pager -q -u '${unit}' -p err`)).trim();
}

/**
 * What a stopped suite must not leave behind: processes of user dispatchd, entries in
 * /run/dispatchd, the scoreboard segment. Returns a list of leftovers (empty: clean).
 */
export async function leftovers(sb: Sandbox): Promise<string[]> {
  const out = await sb.out(
    'pgrep -a -u dispatchd 2>/dev/null | sed "s/^/process: /" || true; ' +
      'if [ -d /run/dispatchd ]; then ls -A /run/dispatchd | sed "s|^|/run/dispatchd/|"; fi; ' +
      'if [ -e /dev/shm/dispatchd.scoreboard ]; then echo /dev/shm/dispatchd.scoreboard; fi',
  );
  return out.split('\n').filter((l) => l.trim() !== '');
}
