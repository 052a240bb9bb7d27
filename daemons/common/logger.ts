/**
 * Logging for the daemons: winston, to the journal with structured fields when the process
 * runs under systemd (JOURNAL_STREAM names our stderr, systemd.exec(5)), else to stderr as
 * one line per entry with key=value fields. Only daemon entry points create a logger;
 * library code throws instead.
 *
 * Journal entries carry PRIORITY (syslog(3) level), SYSLOG_IDENTIFIER (dispatchd-main,
 * dispatchd-secondary, dispatchd-watchdog) and each metadata key in upper case
 * (`{ lease: 'ab' }` → `LEASE=ab`), visible with `journalctl -o json`.
 */
import { createRequire } from 'node:module';
import winston from 'winston';
import { stderrIsJournal } from './journal-stream.js';
import Transport from 'winston-transport';

/** syslog(3) priorities, the levels winston uses here. */
export const PRIORITY = { emerg: 0, alert: 1, crit: 2, error: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;
export type Level = keyof typeof PRIORITY;

export type Logger = winston.Logger;

type JournalSend = (priority: Level, message: string, fields: Record<string, string>) => void;

/** The native journal sender (sd_journal_sendv(3) through the `systemd-journald` addon). */
function loadJournalSend(): JournalSend {
  const require = createRequire(import.meta.url);
  const J = require('systemd-journald') as Record<string, (m: string, f: Record<string, string>) => void>;
  const names: Record<Level, string> = { emerg: 'emerg', alert: 'alert', crit: 'crit', error: 'err', warning: 'warning', notice: 'notice', info: 'info', debug: 'debug' };
  return (level, message, fields) => J[names[level]]!(message, fields);
}

/** A journal field name: upper case letters, digits and underscores, not starting with '_'. */
export function journalFieldName(key: string): string | undefined {
  const name = key.replace(/[^A-Za-z0-9_]/g, '_').toUpperCase().replace(/^_+/, '');
  if (!name || /^[0-9]/.test(name) || name.length > 64) return undefined;
  return name;
}

const RESERVED = new Set(['level', 'message', 'timestamp', 'splat', 'stack']);

function metadata(info: winston.Logform.TransformableInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) if (!RESERVED.has(k) && v !== undefined) out[k] = v;
  return out;
}

class JournaldTransport extends Transport {
  constructor(private readonly send: JournalSend, private readonly identifier: string) {
    super();
  }

  override log(info: winston.Logform.TransformableInfo, next: () => void): void {
    const fields: Record<string, string> = { SYSLOG_IDENTIFIER: this.identifier };
    for (const [k, v] of Object.entries(metadata(info))) {
      const name = journalFieldName(k);
      if (name && name !== 'MESSAGE' && name !== 'PRIORITY') fields[name] = typeof v === 'string' ? v : JSON.stringify(v);
    }
    const stack = (info as { stack?: unknown }).stack;
    if (typeof stack === 'string') fields.STACK_TRACE = stack;
    try {
      this.send(info.level as Level, String(info.message), fields);
    } catch {
      // The journal is gone (shutdown): stderr still reaches it through the stream.
      process.stderr.write(`<${PRIORITY[info.level as Level] ?? 6}>${String(info.message)}\n`);
    }
    next();
  }
}

/** key=value rendering of metadata for one-line logs: `lease=ab12 peer=secondary-1`. */
export function formatFields(meta: Record<string, unknown>): string {
  return Object.entries(meta)
    .map(([k, v]) => {
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      return `${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
    })
    .join(' ');
}


export interface LoggerOptions {
  /** SYSLOG_IDENTIFIER, e.g. dispatchd-main. */
  identifier: string;
  /** Lowest level logged (default info; DISPATCHD_LOG_LEVEL=debug overrides). */
  level?: Level;
  /** Force a destination; default: the journal when stderr is the journal. */
  journal?: boolean;
  /** Where non-journal lines go (default process.stderr). */
  stream?: NodeJS.WritableStream;
}

/** Loggers that send through the journal's native protocol (a datagram per entry). */
const nativeJournal = new WeakSet<Logger>();

/** Creates a daemon's logger. */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? ((process.env.DISPATCHD_LOG_LEVEL as Level | undefined) ?? 'info');
  let useJournal = options.journal ?? stderrIsJournal();
  let send: JournalSend | undefined;
  if (useJournal) {
    try {
      send = loadJournalSend();
    } catch {
      useJournal = false; // addon missing: the stream with <N> prefixes still gives priorities
    }
  }
  const transports: Transport[] = [];
  if (useJournal && send) {
    transports.push(new JournaldTransport(send, options.identifier));
  } else {
    const underJournal = stderrIsJournal();
    transports.push(
      new winston.transports.Stream({
        stream: options.stream ?? process.stderr,
        format: winston.format.printf((info) => {
          const meta = formatFields(metadata(info));
          // One entry, one line: under the journal each line would be a separate entry.
          const line = `${String(info.message).replace(/\r?\n/g, '\\n')}${meta ? ' ' + meta : ''}`;
          // <N> is parsed by journald as the priority (sd-daemon(3)); elsewhere show the level.
          return underJournal ? `<${PRIORITY[info.level as Level] ?? 6}>${line}` : `${new Date().toISOString()} ${options.identifier} ${info.level}: ${line}`;
        }),
      }),
    );
  }
  const logger = winston.createLogger({ levels: PRIORITY, level, transports, exitOnError: false });
  if (useJournal && send) nativeJournal.add(logger);
  return logger;
}

/**
 * Logs the last line a process writes before it exits (no fields). Through the journal's
 * native protocol that line may reach journald after the process is gone; journald then
 * cannot read the sender's cgroup and stores the entry without _SYSTEMD_UNIT and
 * _SYSTEMD_INVOCATION_ID (`journalctl -u UNIT` does not show it; seen about once in 80
 * stops under load). The stderr stream systemd connected names its unit in the stream's
 * header (systemd-journald.service(8), "stream" transport), so the line goes there, with
 * its `<N>` priority prefix (sd-daemon(3)); the identifier is the unit's SyslogIdentifier=.
 */
export function logLastLine(logger: Logger, level: Level, message: string): void {
  if (!nativeJournal.has(logger)) {
    logger.log(level, message);
    return;
  }
  try {
    process.stderr.write(`<${PRIORITY[level]}>${message.replace(/\r?\n/g, '\\n')}\n`);
  } catch {
    // stderr is gone as well: nothing left to tell
  }
}

/** Flushes and closes a logger; resolves within `timeoutMs` even if a transport hangs. */
export function closeLogger(logger: Logger, timeoutMs = 1000): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, timeoutMs);
    logger.on('finish', () => {
      clearTimeout(t);
      resolve();
    });
    logger.end();
  });
}

/**
 * Logs an incident at most once per `intervalMs` per key (a bad peer, a damaged mailbox),
 * counting what it suppressed, so garbage costs one log line per interval, not one per byte.
 */
export class IncidentLimiter {
  private readonly seen = new Map<string, { last: number; suppressed: number }>();

  constructor(private readonly intervalMs = 10_000, private readonly maxKeys = 1024) {}

  /** Returns the suppressed count to report (≥ 0) when the caller should log, else undefined. */
  shouldLog(key: string, now = Date.now()): number | undefined {
    const entry = this.seen.get(key);
    if (entry && now - entry.last < this.intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    if (!entry && this.seen.size >= this.maxKeys) {
      for (const [k, v] of this.seen) if (now - v.last >= this.intervalMs) this.seen.delete(k);
      if (this.seen.size >= this.maxKeys) return undefined; // bounded: a flood of new keys is not logged key by key
    }
    const suppressed = entry?.suppressed ?? 0;
    this.seen.set(key, { last: now, suppressed: 0 });
    return suppressed;
  }
}
