/** Shared by the handler tests: a RunContext with a deadline, resolved types, a capturing logger. */
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../../../../daemons/common/logger.js';
import { resolveType, type RequestType, type TypeDeclaration } from '../../../../daemons/common/request-type.js';
import type { RunContext } from '../../../../daemons/secondary-server/handlers/handler.js';

export const DEFAULTS = { deadline_ms: 30_000, max_payload_bytes: 64 << 20, max_result_bytes: 64 << 20, concurrency: 4 };

export function typeOf<H extends TypeDeclaration['handler']>(name: string, d: TypeDeclaration & { handler: H }): Extract<RequestType, { handler: H }> {
  return resolveType(name, d, DEFAULTS, { file: 'test.toml' }) as Extract<RequestType, { handler: H }>;
}

/** A run context whose signal fires with reason 'deadline' after `deadlineMs`; dispose() clears the timer. */
export function runContext(deadlineMs = 10_000): RunContext & { dispose(): void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort('deadline'), deadlineMs);
  return { signal: ac.signal, deadlineMs, lease: 'ab'.repeat(16), secondary: 'secondary-1', dispose: () => clearTimeout(timer) };
}

/** A logger whose lines (message and KEY=value fields) are kept in `lines`. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const stream = new PassThrough();
  const lines: string[] = [];
  let rest = '';
  stream.on('data', (b: Buffer) => {
    rest += b.toString();
    let i;
    while ((i = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      lines.push(line);
    }
  });
  return { logger: createLogger({ identifier: 'test', journal: false, stream }), lines };
}
