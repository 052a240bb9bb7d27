/**
 * topology.ts: one id per daemon with one parse and one format, one instance bound, and the
 * slot, units, paths and entry point of each daemon derived from the id.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  shortDaemonName,
  clientSocketPath,
  clientSocketUnit,
  daemonAtSlot,
  daemonIdOf,
  daemonOfUnit,
  entryPoint,
  formatDaemonId,
  instanceOf,
  isDaemonName,
  isSecondaryInstance,
  MAIN,
  mailboxPath,
  mailboxSocketUnit,
  MAX_SECONDARIES,
  parseDaemonId,
  PROBED_UNIT_PATTERNS,
  sameDaemon,
  secondary,
  secondaryInstancesIn,
  serviceUnit,
  SLOT_COUNT,
  slotIndexOf,
  socketUnits,
  suiteDaemons,
  unitsOf,
  WATCHDOG,
  type DaemonId,
} from '../../../daemons/common/topology.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const every = suiteDaemons(MAX_SECONDARIES);

t.test('the largest suite: main, secondaries 1..62, the watchdog, one slot each', async (t) => {
  t.equal(MAX_SECONDARIES, 62);
  t.equal(every.length, MAX_SECONDARIES + 2);
  t.equal(SLOT_COUNT, every.length, 'one slot per possible daemon');
  t.same(every.map(slotIndexOf).sort((a, b) => a - b), Array.from({ length: SLOT_COUNT }, (_, i) => i), 'slots 0..63, each once');
  t.equal(slotIndexOf(MAIN), 0);
  t.equal(slotIndexOf(WATCHDOG), 1);
  t.equal(slotIndexOf(secondary(1)), 2);
  t.equal(slotIndexOf(secondary(MAX_SECONDARIES)), SLOT_COUNT - 1);
  for (const id of every) t.ok(sameDaemon(daemonAtSlot(slotIndexOf(id))!, id), `slot ${slotIndexOf(id)} holds ${formatDaemonId(id)}`);
  t.equal(daemonAtSlot(SLOT_COUNT), undefined, 'no daemon past the last slot');
  t.equal(daemonAtSlot(-1), undefined);
});

t.test('docs/SCOREBOARD.md places the secondaries as topology.ts does', async (t) => {
  const doc = readFileSync(join(REPO, 'docs', 'SCOREBOARD.md'), 'utf8');
  t.match(doc, `| 2 … ${SLOT_COUNT - 1} | secondary 1 … ${MAX_SECONDARIES} (\`secondary-N\` is slot \`N + 1\`) |`);
});

t.test('names: one format, one parse, inverse of each other', async (t) => {
  t.same([MAIN, WATCHDOG, secondary(7)].map(formatDaemonId), ['main', 'watchdog', 'secondary-7']);
  t.same(['secondary-7', 'main', 'secondary-63', 'x'].map(shortDaemonName), ['7', 'main', 'secondary-63', 'x'], 'short names: only a real secondary shortens');
  for (const id of every) t.ok(sameDaemon(parseDaemonId(formatDaemonId(id))!, id), formatDaemonId(id));
  for (const bad of ['', 'Main', 'main ', 'secondary', 'secondary-', 'secondary-0', 'secondary-01', `secondary-${MAX_SECONDARIES + 1}`, 'secondary-999', 'secondary-1a', 'secondary--1', 'watchdog2', 'scoreboard']) {
    t.equal(parseDaemonId(bad), undefined, JSON.stringify(bad));
    t.notOk(isDaemonName(bad), `${JSON.stringify(bad)} is no daemon`);
  }
  t.same(daemonIdOf('secondary', 3), secondary(3));
  t.equal(daemonIdOf('main', 5), MAIN, 'the instance of main is ignored');
  t.same([MAIN, WATCHDOG, secondary(4)].map(instanceOf), [0, 0, 4]);
  t.notOk(sameDaemon(secondary(1), secondary(2)));
  t.notOk(sameDaemon(MAIN, WATCHDOG));
});

t.test('the instance bound: 1..62, whole numbers, thrown as RangeError', async (t) => {
  for (const n of [1, 2, MAX_SECONDARIES]) t.ok(isSecondaryInstance(n), `${n}`);
  for (const n of [0, -1, MAX_SECONDARIES + 1, 999, 1.5, NaN, Infinity, '1', undefined]) {
    t.notOk(isSecondaryInstance(n), String(n));
    if (typeof n === 'number') t.throws(() => secondary(n), RangeError, `secondary(${n})`);
  }
  t.throws(() => daemonIdOf('secondary', 0), RangeError);
});

t.test('units: service and sockets of each daemon, and back from a service unit', async (t) => {
  t.same(unitsOf(MAIN), ['dispatchd-main.service', 'dispatchd-main.socket', 'dispatchd-main-mailbox.socket']);
  t.same(unitsOf(WATCHDOG), ['dispatchd-watchdog.service', 'dispatchd-watchdog.socket']);
  t.same(unitsOf(secondary(2)), ['dispatchd-secondary@2.service', 'dispatchd-secondary@2.socket', 'dispatchd-secondary-mailbox@2.socket']);
  t.equal(clientSocketUnit(secondary(3)), 'dispatchd-secondary@3.socket');
  t.equal(mailboxSocketUnit(WATCHDOG), 'dispatchd-watchdog.socket');
  t.same(socketUnits(MAIN), [clientSocketUnit(MAIN), mailboxSocketUnit(MAIN)], 'client socket first');
  for (const id of every) t.ok(sameDaemon(daemonOfUnit(serviceUnit(id))!, id), serviceUnit(id));
  for (const unit of [
    'dispatchd-scoreboard.service',
    'dispatchd.target',
    'dispatchd-main.socket',
    'dispatchd-secondary@1.socket',
    'dispatchd-secondary@.service',
    'dispatchd-secondary@0.service',
    'dispatchd-secondary@01.service',
    `dispatchd-secondary@${MAX_SECONDARIES + 1}.service`,
    'dispatchd-secondary@x.service',
    'dispatchd-secondary@1.service.bak',
    'xdispatchd-main.service',
  ]) {
    t.equal(daemonOfUnit(unit), undefined, unit);
  }
  t.same(PROBED_UNIT_PATTERNS, ['dispatchd-main.service', 'dispatchd-secondary@*.service', 'dispatchd-main-mailbox.socket', 'dispatchd-secondary-mailbox@*.socket'], 'the watchdog lists main and the secondaries (not itself) and their mailbox sockets');
});

t.test('secondaryInstancesIn: the secondaries named in systemctl output, sorted, once each, within the bound', async (t) => {
  t.same(secondaryInstancesIn('dispatchd-main.service dispatchd-secondary@10.service dispatchd-secondary@2.service dispatchd-secondary@2.socket dispatchd-secondary@2.service'), [2, 10]);
  t.same(secondaryInstancesIn(`dispatchd-secondary@${MAX_SECONDARIES}.service\ndispatchd-secondary@${MAX_SECONDARIES + 1}.service`), [MAX_SECONDARIES]);
  t.same(secondaryInstancesIn(''), []);
});

t.test('paths in the runtime directory', async (t) => {
  const dir = '/run/dispatchd';
  t.equal(clientSocketPath(dir, MAIN), '/run/dispatchd/main.sock');
  t.equal(clientSocketPath(dir, secondary(2)), '/run/dispatchd/secondary-2.sock');
  t.equal(mailboxPath(dir, MAIN), '/run/dispatchd/main.fifo');
  t.equal(mailboxPath(dir, secondary(2)), '/run/dispatchd/secondary-2.fifo');
  t.equal(mailboxPath('/run/x', WATCHDOG), '/run/x/watchdog.fifo');
  t.throws(() => clientSocketPath(dir, WATCHDOG), RangeError, 'the watchdog has no client socket');
  const all = every.flatMap((id: DaemonId) => [mailboxPath(dir, id), ...(id.kind === 'watchdog' ? [] : [clientSocketPath(dir, id)])]);
  t.equal(new Set(all).size, all.length, 'no two daemons share a path');
});

t.test('every entry point exists in the source tree', async (t) => {
  for (const kind of ['main', 'secondary', 'watchdog'] as const) {
    const source = join(REPO, entryPoint(kind).replace(/\.js$/, '.ts'));
    t.ok(existsSync(source), `${kind}: ${source}`);
  }
});
