/**
 * The built-in handlers (`handler = "builtin"`), declared by the package's
 * /usr/share/dispatchd/types.d/00-builtin.toml like any other type:
 *
 * | builtin | DATA                                | result                         |
 * | ------- | ----------------------------------- | ------------------------------ |
 * | echo    | any bytes                           | DATA, byte for byte            |
 * | sha256  | any bytes                           | lowercase hex SHA-256 of DATA  |
 * | sleep   | a whole number of ms, ASCII decimal | `slept N`                      |
 *
 * They run in the secondary's event loop: echo and sha256 finish within one turn, so they
 * run without a deadline timer; sleep waits and is cut off at its deadline.
 */
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { DispatchError } from '../../common/errors.js';
import type { BuiltinHandler as BuiltinName } from '../../common/request-type.js';
import { MAX_TIMER_MS } from '../../common/timing.js';
import type { Handler, RunContext } from './handler.js';

/** Parses sleep's DATA. @throws DispatchError BAD_REQUEST. */
export function parseSleepMs(data: Buffer): number {
  const text = data.toString('latin1').trim();
  if (!/^[0-9]{1,10}$/.test(text)) {
    throw new DispatchError('BAD_REQUEST', `sleep takes a whole number of milliseconds as DATA, got '${text.slice(0, 32)}'`);
  }
  return Number(text);
}

type Run = (data: Buffer, signal: AbortSignal) => Promise<Buffer>;

const BUILTINS: Record<BuiltinName, { run: Run; waits: boolean }> = {
  echo: { waits: false, run: async (data) => data },
  sha256: { waits: false, run: async (data) => Buffer.from(createHash('sha256').update(data).digest('hex'), 'latin1') },
  sleep: {
    waits: true,
    run: async (data, signal) => {
      const ms = parseSleepMs(data);
      for (let left = ms; left > 0; left -= MAX_TIMER_MS) await delay(Math.min(left, MAX_TIMER_MS), undefined, { signal });
      return Buffer.from(`slept ${ms}`, 'latin1');
    },
  },
};

export class BuiltinHandler implements Handler {
  readonly waits: boolean;
  private readonly fn: Run;

  constructor(name: BuiltinName) {
    this.fn = BUILTINS[name].run;
    this.waits = BUILTINS[name].waits;
  }

  run(data: Buffer, ctx: RunContext): Promise<Buffer> {
    return this.fn(data, ctx.signal);
  }

  async close(): Promise<void> {
    // nothing held
  }
}
