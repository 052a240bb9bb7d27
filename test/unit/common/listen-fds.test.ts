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
