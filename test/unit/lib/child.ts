/**
 * Runs a TypeScript fixture in a child Node process with the same TypeScript loader tap
 * gives the test itself, so fixtures import the daemons' .ts sources directly.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** The loader flags of this process that a child needs to run .ts files. */
export function tsExecArgv(): string[] {
  const ts = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  return ts.length > 0 ? ts : process.execArgv;
}

/** Spawns `node <loader> file ...args`. */
export function spawnTs(file: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [...tsExecArgv(), file, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...options });
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a child's output and resolves when it exits. */
export function collect(child: ChildProcess): Promise<ChildResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Resolves with the first line a child prints on stdout (for "ready" handshakes). */
export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (s: Buffer | string) => {
      buf += s.toString();
      const nl = buf.indexOf('\n');
      if (nl !== -1) {
        child.stdout!.off('data', onData);
        resolve(buf.slice(0, nl));
      }
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before printing a line`)));
  });
}
