/**
 * `handler = "exec"`: one process per request (docs/TYPES.md "exec handlers").
 *
 * The secondary starts `command` (argv, no shell) in a process group of its own with DATA on
 * its standard input; its standard output is the result; exit status 0 is success. Its
 * environment is small and fixed: PATH, LANG, and DISPATCHD_TYPE, DISPATCHD_DEADLINE_MS,
 * DISPATCHD_LEASE, DISPATCHD_SECONDARY (nothing of the secondary's own environment leaks).
 *
 * - another end (exit status ≠ 0, a signal): HANDLER_FAILED with the status or signal and
 *   the last {@link STDERR_TAIL_BYTES} of standard error, which is also logged;
 * - more than `max_result_bytes` on standard output: the group is killed, RESULT_TOO_LARGE;
 * - the deadline (or the secondary stopping): the group gets SIGTERM, then SIGKILL after
 *   {@link KILL_GRACE_MS}; the run rejects at once (the caller answers DEADLINE_EXCEEDED);
 * - a handler that never reads its input, closes standard output early, writes binary, or
 *   leaves a background child holding standard output: once the process itself has exited,
 *   what is left of its group is killed and the pipes are closed, so nothing hangs.
 *
 * Killing a process group at a deadline is process control, not IPC: the handler's data
 * travels only over its pipes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { DispatchError, errnoCode, reason } from '../../common/errors.js';
import type { RequestType } from '../../common/request-type.js';
import type { Handler, RunContext } from './handler.js';

/** After SIGTERM at the deadline, how long the process group has before SIGKILL (ms). */
export const KILL_GRACE_MS = 500;
/** How much of the end of standard error a failure reports, in bytes. */
export const STDERR_TAIL_BYTES = 4096;
/** After the process exited, how long its pipes may take to deliver what is left (ms). */
const PIPE_DRAIN_MS = 100;
/** The PATH a handler runs with. */
const HANDLER_PATH = '/usr/local/bin:/usr/bin:/bin';

type ExecType = Extract<RequestType, { handler: 'exec' }>;

/** The last `max` bytes written, kept without holding more than twice that. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    if (this.size > 2 * this.max) this.compact();
  }
  private compact(): void {
    const all = Buffer.concat(this.chunks);
    const keep = all.subarray(Math.max(0, all.length - this.max));
    this.chunks = [keep];
    this.size = keep.length;
  }
  text(): string {
    this.compact();
    return this.chunks[0]?.toString('utf8').trim() ?? '';
  }
}

/** Sends a signal to a whole process group; a group already gone is fine. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw err;
  }
}

export class ExecHandler implements Handler {
  readonly waits = true;

  constructor(private readonly type: ExecType) {}

  run(data: Buffer, ctx: RunContext): Promise<Buffer> {
    const t = this.type;
    return new Promise<Buffer>((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn(t.command[0]!, t.command.slice(1), {
          detached: true, // its own process group (setsid): the deadline kills children too
          stdio: ['pipe', 'pipe', 'pipe'],
          env: {
            PATH: HANDLER_PATH,
            LANG: 'C.UTF-8',
            DISPATCHD_TYPE: t.name,
            DISPATCHD_DEADLINE_MS: String(ctx.deadlineMs),
            DISPATCHD_LEASE: ctx.lease,
            DISPATCHD_SECONDARY: ctx.secondary,
          },
        });
      } catch (err) {
        reject(this.failed(`failed to start '${t.command[0]}': ${reason(err)}`, ''));
        return;
      }
      const out: Buffer[] = [];
      let outBytes = 0;
      const err = new Tail(STDERR_TAIL_BYTES);
      let settled = false;
      let graceTimer: NodeJS.Timeout | undefined;
      let drainTimer: NodeJS.Timeout | undefined;

      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        ctx.signal.removeEventListener('abort', onAbort);
        f();
      };
      const closePipes = () => {
        child.stdin?.destroy();
        child.stdout?.destroy();
        child.stderr?.destroy();
      };
      /** Kills what is left of the group, with a SIGKILL after the grace when SIGTERM is not enough. */
      const stopGroup = (first: NodeJS.Signals) => {
        killGroup(child, first);
        if (first === 'SIGKILL') return;
        graceTimer = setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS);
        graceTimer.unref();
      };
      const onAbort = () => {
        // The caller says why (ctx.signal.reason); the group must not outlive the run.
        stopGroup('SIGTERM');
        finish(() => reject(ctx.signal.reason));
        child.once('exit', () => {
          if (graceTimer) clearTimeout(graceTimer);
          killGroup(child, 'SIGKILL'); // background children that ignored SIGTERM
          closePipes();
        });
      };
      if (ctx.signal.aborted) {
        onAbort();
        return;
      }
      ctx.signal.addEventListener('abort', onAbort, { once: true });

      child.on('error', (e) => {
        // ENOENT, EACCES: the program cannot be started.
        finish(() => reject(this.failed(`failed to start '${t.command[0]}': ${reason(e)}; check the type's command (dispatchctl check-config)`, '')));
        closePipes();
      });
      // A handler that never reads its input, or closes it early: EPIPE, not a failure of its own.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(data);
      child.stdout!.on('data', (chunk: Buffer) => {
        outBytes += chunk.length;
        if (outBytes > t.max_result_bytes) {
          if (!settled) {
            killGroup(child, 'SIGKILL');
            closePipes();
            finish(() => reject(new DispatchError('RESULT_TOO_LARGE', `the '${t.name}' handler wrote more than max_result_bytes (${t.max_result_bytes} bytes) to its standard output and was killed; raise max_result_bytes in its types.d file or make it write less`, { fields: { type: t.name } })));
          }
          return;
        }
        out.push(chunk);
      });
      child.stdout!.on('error', () => undefined);
      child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
      child.stderr!.on('error', () => undefined);

      child.once('exit', (code, signal) => {
        if (graceTimer) clearTimeout(graceTimer);
        // What the process left behind in its group (a background child holding stdout) goes now.
        killGroup(child, 'SIGKILL');
        if (settled) {
          closePipes();
          return;
        }
        const done = () => {
          if (drainTimer) clearTimeout(drainTimer);
          closePipes();
          if (code === 0) {
            finish(() => resolve(out.length === 1 ? out[0]! : Buffer.concat(out, outBytes)));
            return;
          }
          const how = signal ? `was killed by signal ${signal}` : `exited with status ${code}`;
          finish(() => reject(this.failed(`the '${t.name}' handler ${how}`, err.text())));
        };
        if (child.stdout!.readableEnded && child.stderr!.readableEnded) {
          done();
          return;
        }
        // Read what the pipes still hold; a child that escaped the group cannot hold them open.
        let ends = 0;
        const onEnd = () => {
          if (++ends === 2) done();
        };
        if (child.stdout!.readableEnded) ends++;
        else child.stdout!.once('end', onEnd);
        if (child.stderr!.readableEnded) ends++;
        else child.stderr!.once('end', onEnd);
        drainTimer = setTimeout(done, PIPE_DRAIN_MS);
      });
    });
  }

  /** A HANDLER_FAILED error with the standard error's tail (the secondary logs it with the lease). */
  private failed(what: string, stderrTail: string): DispatchError {
    return new DispatchError('HANDLER_FAILED', `${what}${stderrTail ? `; its standard error ended with: ${stderrTail}` : ' (nothing on its standard error)'}`, { fields: { type: this.type.name } });
  }

  async close(): Promise<void> {
    // nothing held between runs
  }
}
