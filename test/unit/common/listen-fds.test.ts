import fc from 'fast-check';
import t from 'tap';
import { parseListenFds, requireFd, SD_LISTEN_FDS_START } from '../../../daemons/common/listen-fds.js';

const PID = 4242;

/** An environment as systemd would pass it, plus an unrelated variable that must survive. */
function env(vars: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: '/usr/bin', ...vars };
}

const cleaned = (e: NodeJS.ProcessEnv) => !('LISTEN_FDS' in e) && !('LISTEN_PID' in e) && !('LISTEN_FDNAMES' in e) && e.PATH === '/usr/bin';

t.test('nothing passed: an empty map', async (t) => {
  const e = env({});
  t.same([...parseListenFds(e, PID)], []);
  t.ok(cleaned(e));
});

t.test('fds named by FileDescriptorName=', async (t) => {
  const e = env({ LISTEN_FDS: '2', LISTEN_PID: String(PID), LISTEN_FDNAMES: 'client:mailbox' });
  const fds = parseListenFds(e, PID);
  t.same([...fds], [
    ['client', [SD_LISTEN_FDS_START]],
    ['mailbox', [SD_LISTEN_FDS_START + 1]],
  ]);
  t.equal(SD_LISTEN_FDS_START, 3);
  t.ok(cleaned(e), 'LISTEN_* removed so that children do not inherit them');
});

t.test('the order of the fds follows the names', async (t) => {
  const fds = parseListenFds(env({ LISTEN_FDS: '2', LISTEN_PID: String(PID), LISTEN_FDNAMES: 'mailbox:client' }), PID);
  t.equal(requireFd(fds, 'client', 'x.service'), 4);
  t.equal(requireFd(fds, 'mailbox', 'x.service'), 3);
});

t.test('one name for several fds', async (t) => {
  const fds = parseListenFds(env({ LISTEN_FDS: '3', LISTEN_PID: String(PID), LISTEN_FDNAMES: 'client:client:mailbox' }), PID);
  t.same(fds.get('client'), [3, 4]);
  t.same(fds.get('mailbox'), [5]);
});

t.test('no names: every fd is "unknown", as sd_listen_fds_with_names(3) says', async (t) => {
  for (const names of [undefined, '']) {
    const vars: Record<string, string> = { LISTEN_FDS: '2', LISTEN_PID: String(PID) };
    if (names !== undefined) vars.LISTEN_FDNAMES = names;
    const fds = parseListenFds(env(vars), PID);
    t.same([...fds], [['unknown', [3, 4]]], `LISTEN_FDNAMES ${JSON.stringify(names)}`);
  }
});

t.test('LISTEN_FDS=0 passes nothing', async (t) => {
  const fds = parseListenFds(env({ LISTEN_FDS: '0', LISTEN_PID: String(PID) }), PID);
  t.equal(fds.size, 0);
});

t.test('LISTEN_PID of another process (our parent): an empty map, env cleaned', async (t) => {
  const e = env({ LISTEN_FDS: '2', LISTEN_PID: String(PID + 1), LISTEN_FDNAMES: 'client:mailbox' });
  t.equal(parseListenFds(e, PID).size, 0);
  t.ok(cleaned(e));
});

t.test('malformed variables: LISTEN_FDS_INVALID, env cleaned all the same', async (t) => {
  const cases: Array<[string, Record<string, string>]> = [
    ['names for fewer fds', { LISTEN_FDS: '2', LISTEN_PID: String(PID), LISTEN_FDNAMES: 'client' }],
    ['names for more fds', { LISTEN_FDS: '1', LISTEN_PID: String(PID), LISTEN_FDNAMES: 'client:mailbox' }],
    ['LISTEN_PID missing', { LISTEN_FDS: '1' }],
    ['LISTEN_PID not a number', { LISTEN_FDS: '1', LISTEN_PID: 'self' }],
    ['LISTEN_PID 0', { LISTEN_FDS: '1', LISTEN_PID: '0' }],
    ['LISTEN_PID negative', { LISTEN_FDS: '1', LISTEN_PID: '-5' }],
    ['LISTEN_FDS not a number', { LISTEN_FDS: 'two', LISTEN_PID: String(PID) }],
    ['LISTEN_FDS negative', { LISTEN_FDS: '-1', LISTEN_PID: String(PID) }],
    ['LISTEN_FDS with a leading zero', { LISTEN_FDS: '01', LISTEN_PID: String(PID) }],
    ['LISTEN_FDS absurdly large', { LISTEN_FDS: '100000', LISTEN_PID: String(PID) }],
  ];
  for (const [what, vars] of cases) {
    const e = env(vars);
    t.throws(() => parseListenFds(e, PID), { code: 'LISTEN_FDS_INVALID' }, what);
    t.ok(cleaned(e), `${what}: env cleaned`);
  }
  t.throws(() => parseListenFds(env({ LISTEN_FDS: '2', LISTEN_PID: String(PID), LISTEN_FDNAMES: 'a' }), PID), { message: /1 names for 2 fds/ });
});

t.test('requireFd', async (t) => {
  const fds = parseListenFds(env({ LISTEN_FDS: '3', LISTEN_PID: String(PID), LISTEN_FDNAMES: 'client:mailbox:mailbox' }), PID);
  t.equal(requireFd(fds, 'client', 'dispatchd-main.service'), 3);

  const missing = (() => {
    try {
      requireFd(fds, 'control', 'dispatchd-secondary@2.service');
    } catch (e) {
      return e as Error & { code: string };
    }
  })();
  t.equal(missing?.code, 'LISTEN_FDS_MISSING');
  t.match(missing?.message, 'dispatchd-secondary@2.service', 'names the unit');
  t.match(missing?.message, /FileDescriptorName=control/, 'says which FileDescriptorName= is expected');
  t.match(missing?.message, /client, mailbox/, 'lists the names that were passed');

  t.throws(() => requireFd(fds, 'mailbox', 'dispatchd-main.service'), { code: 'LISTEN_FDS_MISSING', message: /2 passed.*dispatchd-main\.service/ }, 'two fds under one name');
  t.throws(() => requireFd(new Map(), 'client', 'dispatchd-main.service'), { code: 'LISTEN_FDS_MISSING', message: /names passed: none/ });
});

// ---- properties: the LISTEN_* variables are input from the environment -------------------

t.test('property: any LISTEN_* values give a map or LISTEN_FDS_INVALID, and are always removed', async (t) => {
  const value = fc.option(fc.oneof(fc.string({ maxLength: 20 }), fc.nat(5000).map(String), fc.constant(String(PID)), fc.array(fc.constantFrom('client', 'mailbox', '', 'x:y'), { maxLength: 5 }).map((a) => a.join(':'))), { nil: undefined });
  fc.assert(
    fc.property(value, value, value, (fds, pid, names) => {
      const e = env({});
      if (fds !== undefined) e.LISTEN_FDS = fds;
      if (pid !== undefined) e.LISTEN_PID = pid;
      if (names !== undefined) e.LISTEN_FDNAMES = names;
      let map: Map<string, number[]> | undefined;
      try {
        map = parseListenFds(e, PID);
      } catch (err) {
        if ((err as { code?: string }).code !== 'LISTEN_FDS_INVALID') throw err;
      }
      if (!cleaned(e)) throw new Error('LISTEN_* left in the environment');
      if (map) {
        const all = [...map.values()].flat().sort((a, b) => a - b);
        // The fds passed are exactly 3 … 3+n-1, each once.
        if (all.some((fd, i) => fd !== SD_LISTEN_FDS_START + i)) throw new Error(`fds ${all.join(',')}`);
        if (all.length > 0 && (fds === undefined || Number(fds) !== all.length || pid !== String(PID))) throw new Error('fds for another process, or a count that differs');
      }
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 random environments');
});
