/**
 * The suite's shared timing constants, in ms: one place for each, read by the daemons (through
 * the daemon core), `dispatchctl status`, the configuration defaults and the tests.
 */

/** How often a daemon refreshes its heartbeat and STATUS= (ms), unless the systemd watchdog wants it sooner. */
export const TICK_MS = 1000;

/**
 * How long a daemon serves no request (ms) before it turns V8's incremental marking back on,
 * so that V8's memory reducer can shrink its heap (marking-mode.ts).
 */
export const IDLE_MARKING_AFTER_MS = 10_000;

/**
 * The protocol's bound of a run frame's `deadline_ms` and a lease request's `wait_ms` (ms, one
 * hour; docs/PROTOCOL.md §1.2, §2.2): what a client may ask for, and what a type may declare.
 */
export const MAX_DEADLINE_MS = 3_600_000;

/** The longest delay one Node.js timer holds (2^31 − 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** On stop, how long running requests may take to finish (ms); the units' TimeoutStopSec= allows more. */
export const DRAIN_MS = 1500;

/** After the drain, how long requests cut off with SHUTTING_DOWN get to send that answer (ms). */
export const CUT_OFF_MS = 200;

/**
 * A heartbeat older than this (ms) marks a running daemon unresponsive: three missed ticks
 * ({@link TICK_MS}). The default of `main.heartbeat_stale_ms` (main stops choosing such a
 * secondary) and the limit `dispatchctl status` reports `unresponsive` at.
 */
export const STALE_HEARTBEAT_MS = 3000;

/**
 * The longest a lease may be held unclaimed (ms): the upper bound of `main.lease_ttl_ms`, and
 * the cap a secondary puts on a reservation's `exp`, so a forged or odd reservation (an `exp`
 * far ahead, a wall clock stepped back) cannot pin capacity longer than this.
 */
export const MAX_LEASE_TTL_MS = 600_000;

/**
 * What a secondary that is full when a lease is presented tells the client to wait before
 * retrying on a fresh lease (ms): main had minted it from a credit (docs/PROTOCOL.md §2.2).
 */
export const SECONDARY_BUSY_RETRY_MS = 20;

/**
 * A secondary sends a `credit` message at most once per this many ms: ends and new credits
 * after a quiet interval go out at once (the same turn of its event loop), those that follow
 * within it are gathered into one message at its end.
 */
export const CREDIT_BATCH_MS = 1;

/**
 * While main holds at least half of a secondary's max_leases in fresh credits, the ends of
 * its leases wait up to this long (ms) to share one `credit` message (main needs none of
 * that capacity back yet); with fewer, they go within CREDIT_BATCH_MS.
 */
export const CREDIT_GATHER_MS = 10;

/**
 * A claim goes to main with its lease's end (one `credit` for both), or this long (ms) after
 * the claim while the lease is still held: well within main's grace of 1,000 ms
 * (lease-ledger.ts CLAIM_REPORT_GRACE_MS) before it counts a lease never reported claimed as
 * expired unused.
 */
export const CLAIM_REPORT_MS = 100;

/**
 * Main reuses one read of the scoreboard for the new leases of this many ms (a read is two
 * preads of the whole file and a decode of every slot, a third of main's CPU per lease when
 * read for each). A killed secondary is still skipped at once (its pid is looked up per
 * lease); a secondary's `ready`, a credit of a generation the snapshot does not show, the
 * tick and a wait in the admission queue all read it afresh.
 */
export const SCOREBOARD_REUSE_MS = 10;
