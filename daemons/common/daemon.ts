/**
 * The process-level side of every daemon: command line, configuration, logger, systemd
 * notifications, signals, and the exit-code mapping. Each daemon's main.ts is a call to
 * {@link runDaemon}; the testable server classes know nothing of the process.
 *
 * Signals handled: SIGTERM and SIGINT (stop: drain, close everything, flush the log, exit 0)
 * and SIGHUP (reload the configuration file, sent by `systemctl reload` through the units'
 * ExecReload=). Nothing else; in particular no signal is used for IPC.
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { DEFAULT_CONFIG_PATH, loadConfig, type Config, type ReloadOutcome } from './config.js';
import { missingConfigIsError } from './config-path.js';
import { DispatchError, reason } from './errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { parseListenFds, type ListenFds } from './listen-fds.js';
import { closeLogger, createLogger, logLastLine, type Logger } from './logger.js';
import { MarkingMode, type MarkingPort } from './marking-mode.js';
import { loadNotifyBinding, Notifier } from './notify.js';
import { VERSION } from './version.js';

/** A running daemon: stop() releases everything it holds; reload() applies a new configuration. */
export interface Service {
  stop(why: string): Promise<void>;
  reload(config: Config): ReloadOutcome;
  /** The STATUS= line to show once a reload is over. */
  statusLine(): string;
}

export interface DaemonContext<A> {
  args: A;
  config: Config;
  logger: Logger;
  notifier: Notifier;
  listenFds: ListenFds;
  /** V8's incremental marking by whether the daemon serves (marking-mode.ts): for its core. */
  marking: MarkingPort;
}

/** One command-line option of a daemon. */
export interface DaemonOption {
  type: 'string' | 'number';
  describe: string;
  required?: boolean;
  /** Returns what is wrong with the value, or undefined when it is fine. */
  check?: (value: string | number) => string | undefined;
}

/**
 * Parses a daemon's command line with node:util (a daemon starts on every restart, and yargs
 * costs ~50 ms and ~7 MiB to load; dispatchctl keeps yargs).
 * @throws Error with what is wrong, for a usage message.
 */
export function parseDaemonArgs(argv: string[], options: Record<string, DaemonOption> = {}): { help: boolean; values: Record<string, string | number> } {
  const spec: Record<string, { type: 'string' | 'boolean'; default?: string }> = { config: { type: 'string', default: DEFAULT_CONFIG_PATH }, help: { type: 'boolean' } };
  for (const name of Object.keys(options)) spec[name] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
  if (values.help) return { help: true, values: {} };
  const out: Record<string, string | number> = { config: values.config as string };
  for (const [name, o] of Object.entries(options)) {
    const raw = values[name] as string | undefined;
    if (raw === undefined) {
      if (o.required) throw new Error(`missing required option --${name}`);
      continue;
    }
    const value = o.type === 'number' ? Number(raw) : raw;
    if (o.type === 'number' && (raw.trim() === '' || Number.isNaN(value))) throw new Error(`--${name} must be a number, got '${raw}'`);
    const bad = o.check?.(value);
    if (bad) throw new Error(bad);
    out[name] = value;
  }
  return { help: false, values: out };
}

function usage(identifier: string, options: Record<string, DaemonOption> = {}): string {
  const lines = [`usage: ${identifier} [--config FILE]${Object.entries(options).map(([n, o]) => (o.required ? ` --${n} VALUE` : ` [--${n} VALUE]`)).join('')}`, '', `  --config FILE  configuration file (TOML), default ${DEFAULT_CONFIG_PATH}`];
  for (const [n, o] of Object.entries(options)) lines.push(`  --${n} VALUE  ${o.describe}`);
  return `${lines.join('\n')}\n`;
}

export interface DaemonSpec<A> {
  /** SYSLOG_IDENTIFIER, e.g. dispatchd-main. */
  identifier: string;
  /** The unit that runs it, for messages (dispatchd-main.service). */
  unit: (args: A) => string;
  /** Extra command-line options (`--NAME VALUE`), besides `--config FILE` and `--help`. */
  options?: Record<string, DaemonOption>;
  start: (ctx: DaemonContext<A>) => Promise<Service>;
}

/** Runs a daemon until SIGTERM/SIGINT; never returns normally (the process exits). */
export async function runDaemon<A extends { config: string }>(spec: DaemonSpec<A>): Promise<never> {
  // Incremental marking off before the daemon serves, back on while it idles (marking-mode.ts).
  const marking = new MarkingMode((flag) => v8.setFlagsFromString(flag), Date.now());
  let args: A;
  try {
    const parsed = parseDaemonArgs(process.argv.slice(2), spec.options);
    if (parsed.help) {
      process.stdout.write(usage(spec.identifier, spec.options));
      process.exit(EXIT.OK);
    }
    args = parsed.values as unknown as A;
  } catch (err) {
    process.stderr.write(`${spec.identifier}: ${reason(err)}\n${usage(spec.identifier, spec.options)}`);
    process.exit(EXIT.USAGE);
  }
  const logger = createLogger({ identifier: spec.identifier });
  const notifier = new Notifier(loadNotifyBinding());
  const unit = spec.unit(args);

  const die = async (err: unknown, what: string): Promise<never> => {
    const de = err instanceof DispatchError ? err : undefined;
    const code = de ? exitCodeFor(de.code) : EXIT.FAILURE;
    const hint = code === EXIT.CONFIG ? "; not restarted: fix the file, then run: systemctl reset-failed 'dispatchd-*' && systemctl restart dispatchd.target" : '';
    logger.error(`${what}: ${reason(err)}${hint}`, { code: de?.code ?? 'INTERNAL', unit, exit_status: code, ...(de?.fields ?? {}), ...(err instanceof Error && !de ? { stack: err.stack } : {}) });
    try {
      notifier.status(`failed: ${reason(err)}`);
    } catch {
      // not under systemd, or it is gone: the log line above is what matters
    }
    await closeLogger(logger);
    process.exit(code);
  };

  let config: Config;
  let listenFds: ListenFds;
  try {
    config = loadConfig(args.config, missingConfigIsError(args.config));
    listenFds = parseListenFds(process.env, process.pid);
  } catch (err) {
    return die(err, `failed to start ${unit}`);
  }

  process.on('uncaughtException', (err) => void die(err, `${unit} crashed`));
  process.on('unhandledRejection', (err) => void die(err, `${unit} crashed`));

  let service: Service;
  try {
    service = await spec.start({ args, config, logger, notifier, listenFds, marking });
  } catch (err) {
    return die(err, `failed to start ${unit}`);
  }
  // Which version serves (an upgrade test and an operator read it from the journal).
  logger.info(`${unit} started, dispatchd ${VERSION}`, { unit, version: VERSION, pid: process.pid });

  return new Promise<never>(() => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        logger.warning(`received ${sig} again while stopping, exiting now`, { signal: sig });
        void closeLogger(logger).then(() => process.exit(EXIT.OK));
        return;
      }
      stopping = true;
      logger.info(`received ${sig}, stopping`, { signal: sig });
      service
        .stop(sig)
        .then(async () => {
          logLastLine(logger, 'info', `${unit} stopped cleanly`);
          await closeLogger(logger);
          process.exit(EXIT.OK);
        })
        .catch((err) => die(err, `failed to stop ${unit} cleanly`));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', () => {
      if (stopping) return;
      notifier.reloading('reloading configuration');
      try {
        const outcome = service.reload(loadConfig(args.config, missingConfigIsError(args.config)));
        const restart = outcome.needRestart.length ? `; needs a restart to take effect: ${outcome.needRestart.join(', ')}` : '';
        const level = outcome.needRestart.length ? 'warning' : 'notice';
        logger.log(level, `reloaded configuration '${args.config}': ${outcome.applied.length ? `applied ${outcome.applied.join(', ')}` : 'nothing changed'}${restart}`, { config: args.config });
      } catch (err) {
        const de = err instanceof DispatchError ? err : undefined;
        logger.error(`failed to reload configuration: ${reason(err)}; keeping the running configuration`, { code: de?.code ?? 'CONFIG_INVALID', ...(de?.fields ?? {}) });
      }
      notifier.ready(service.statusLine());
    });
  });
}
