/**
 * The worker link's state table (handlers/link-transitions.ts): the documented moves, the
 * events a state ignores, and that a closed link stays closed.
 */
import t from 'tap';
import { LINK_TRANSITIONS, nextLinkState, type LinkEvent, type LinkState } from '../../../../daemons/secondary-server/handlers/link-transitions.js';

const STATES = Object.keys(LINK_TRANSITIONS) as LinkState[];
const EVENTS: LinkEvent[] = ['dial', 'connected', 'hello', 'fault', 'lost', 'close'];

t.test('a worker that connects and says hello is ready; a lost connection goes back to connecting', async (t) => {
  let s: LinkState = 'connecting';
  const path: LinkState[] = [];
  for (const ev of ['dial', 'connected', 'hello', 'lost', 'connected'] as LinkEvent[]) {
    s = nextLinkState(s, ev)!;
    path.push(s);
  }
  t.same(path, ['connecting', 'greeting', 'ready', 'connecting', 'greeting']);
});

t.test('a fault fails every open state; a failed link dials again after the back-off, and stays failed until then', async (t) => {
  for (const s of ['connecting', 'greeting', 'ready', 'failed'] as LinkState[]) t.equal(nextLinkState(s, 'fault'), 'failed', s);
  t.equal(nextLinkState('failed', 'lost'), 'failed');
  t.equal(nextLinkState('failed', 'dial'), 'connecting');
});

t.test('hello is taken only while greeting, connected only while connecting', async (t) => {
  t.same(STATES.filter((s) => nextLinkState(s, 'hello') !== undefined), ['greeting']);
  t.same(STATES.filter((s) => nextLinkState(s, 'connected') !== undefined), ['connecting']);
});

t.test('every state closes; a closed link ignores everything else', async (t) => {
  for (const s of STATES) t.equal(nextLinkState(s, 'close'), 'closed', s);
  t.same(EVENTS.filter((ev) => nextLinkState('closed', ev) !== undefined), ['close']);
});
