/** Running a command to completion and collecting what it printed. */
import { spawn } from 'node:child_process';

export interface ExecResult {
  /** Exit status, or null when killed by a signal (then `signal` says which). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** Wall-clock time the command took, in milliseconds. */
  ms: number;
}

export interface ExecOptions {
  /** Bytes written to the command's standard input (default: none, stdin closed). */
  input?: Buffer | string;
  /** Kill the command after this many milliseconds (default 120 s). */
  timeoutMs?: number;
  cwd?: string;
}

/** Runs `cmd args` and resolves with its status and output; rejects only when it cannot be started. */
export function runCommand(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), ms: Date.now() - started });
    });
    child.stdin.on('error', () => {
      // the command may exit without reading all of its input
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Formats a failed command for an assertion or error message. */
export function describe(what: string, r: ExecResult): string {
  const status = r.signal ? `signal ${r.signal}` : `exit ${r.code}`;
  return `${what}: ${status} after ${r.ms} ms; stdout: ${r.stdout.toString().slice(0, 2000).trim()}; stderr: ${r.stderr.slice(0, 2000).trim()}`;
}
