/**
 * A worker link's states (worker-link.ts's WorkerLink; docs/WORKERS.md §4), as an explicit
 * table: each event moves a link from one state to the next, and WorkerLink takes the action.
 *
 * | state        | on                                   | event       | to           | action                                   |
 * | ------------ | ------------------------------------ | ----------- | ------------ | ---------------------------------------- |
 * | `connecting` | connected                            | `connected` | `greeting`   | start the hello timer (start_timeout_ms) |
 * | `connecting` | connect failed                       | `fault`     | `failed`     | log; retry after the back-off            |
 * | `greeting`   | hello naming the type                | `hello`     | `ready`      | log; send what waits                     |
 * | `greeting`   | no hello within start_timeout_ms     | `fault`     | `failed`     | log (err); restart the unit; retry later |
 * | `ready`      | result / error                       | (none)      | `ready`      | answer the client; send what waits       |
 * | `ready`      | a cancel unanswered after the grace  | `fault`     | `failed`     | log; restart the unit; in flight crash   |
 * | `greeting`, `ready` | connection closed (worker died); an answer over max_result_bytes | `lost` | `connecting` | log; in flight crash (RESULT_TOO_LARGE); reconnect soon |
 * | any but `closed` | bad frame or message             | `fault`     | `failed`     | log (err); restart the unit; in flight crash |
 * | `failed`     | back-off over                        | `dial`      | `connecting` | connect                                  |
 * | `connecting` | the link is made (first connect)     | `dial`      | `connecting` | connect                                  |
 * | any          | the pool closed                      | `close`     | `closed`     | clear the timers; end the connection     |
 *
 * An event a state has no row for changes nothing (a `closed` link stays closed).
 */

/** The link states (the table above). */
export type LinkState = 'connecting' | 'greeting' | 'ready' | 'failed' | 'closed';

/** What happens to a link (the table above). */
export type LinkEvent = 'dial' | 'connected' | 'hello' | 'fault' | 'lost' | 'close';

/** The table: state → event → next state; an event missing from a row is ignored (the state stays). */
export const LINK_TRANSITIONS: Readonly<Record<LinkState, Readonly<Partial<Record<LinkEvent, LinkState>>>>> = {
  connecting: { dial: 'connecting', connected: 'greeting', fault: 'failed', lost: 'connecting', close: 'closed' },
  greeting: { dial: 'connecting', hello: 'ready', fault: 'failed', lost: 'connecting', close: 'closed' },
  ready: { dial: 'connecting', fault: 'failed', lost: 'connecting', close: 'closed' },
  failed: { dial: 'connecting', fault: 'failed', lost: 'failed', close: 'closed' },
  closed: { close: 'closed' },
};

/** The state after `ev` in `state`, or undefined when `state` has no row for `ev` (nothing changes). */
export function nextLinkState(state: LinkState, ev: LinkEvent): LinkState | undefined {
  return LINK_TRANSITIONS[state][ev];
}
