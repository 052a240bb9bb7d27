/**
 * The suite's topology: every daemon kind with its scoreboard slot, systemd units, sockets,
 * mailbox FIFO and entry point, and one typed daemon id with one parse and one format. Every
 * other module (daemons, dispatchctl, tests, bench, packaging checks) asks here instead of
 * building a name, a unit or a path itself.
 *
 *   kind       name (scoreboard, messages)  slot   service unit                      sockets
 *   main       main                         0      dispatchd-main.service            main.sock, main.fifo
 *   watchdog   watchdog                     1      dispatchd-watchdog.service        watchdog.fifo
 *   secondary  secondary-N (1..62)          N + 1  dispatchd-secondary@N.service     secondary-N.sock, secondary-N.fifo
 *
 * docs/ARCHITECTURE.md lists the same table for operators; docs/SCOREBOARD.md the slots.
 */

/** The most secondaries a suite runs: the scoreboard has 64 slots, two of them main's and the watchdog's. */
export const MAX_SECONDARIES = 62;

/**
 * How many secondaries the package enables on a first install (debian/dispatchd.postinst
 * enables dispatchd-secondary@1..N; test/unit/units.test.ts runs it and checks the links).
 */
export const DEFAULT_SECONDARIES = 2;

/**
 * The daemon kinds, in scoreboard `kind` order: a slot's `kind` is 1 + the index here (0 is
 * a free slot; scoreboard-layout.ts, docs/SCOREBOARD.md). A new kind goes at the end.
 */
export const DAEMON_KINDS = ['main', 'secondary', 'watchdog'] as const;
export type DaemonKind = (typeof DAEMON_KINDS)[number];

/** A daemon of the suite: main, the watchdog, or secondary N (1..{@link MAX_SECONDARIES}). */
export type DaemonId = MainId | WatchdogId | SecondaryId;
export type MainId = { readonly kind: 'main' };
export type WatchdogId = { readonly kind: 'watchdog' };
export type SecondaryId = { readonly kind: 'secondary'; readonly instance: number };
/** A daemon that serves clients on a socket of its own (main and the secondaries; not the watchdog). */
export type ServingId = MainId | SecondaryId;

export const MAIN: MainId = Object.freeze({ kind: 'main' });
export const WATCHDOG: WatchdogId = Object.freeze({ kind: 'watchdog' });

/** Whether `n` is a valid secondary instance number (a whole number 1..62). */
export function isSecondaryInstance(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 1 && (n as number) <= MAX_SECONDARIES;
}

/**
 * Secondary N's id.
 * @throws RangeError when N is not a whole number 1..{@link MAX_SECONDARIES}.
 */
export function secondary(instance: number): SecondaryId {
  if (!isSecondaryInstance(instance)) throw new RangeError(`secondary instance must be a whole number 1..${MAX_SECONDARIES}, got ${instance}`);
  return { kind: 'secondary', instance };
}

/**
 * The id of a daemon given as kind and instance, as the scoreboard stores them (the instance
 * is ignored for main and the watchdog).
 * @throws RangeError for a secondary whose instance is not 1..{@link MAX_SECONDARIES}.
 */
export function daemonIdOf(kind: DaemonKind, instance = 0): DaemonId {
  return kind === 'secondary' ? secondary(instance) : kind === 'main' ? MAIN : WATCHDOG;
}

/** The instance number: N for secondary N, 0 for main and the watchdog (the scoreboard's `instance`). */
export function instanceOf(id: DaemonId): number {
  return id.kind === 'secondary' ? id.instance : 0;
}

/** A daemon's name on the scoreboard, in messages and logs: `main`, `watchdog`, `secondary-N`. */
export function formatDaemonId(id: DaemonId): string {
  return id.kind === 'secondary' ? `secondary-${id.instance}` : id.kind;
}

/** Parses a daemon name; undefined when it names no daemon of the suite (`secondary-0`, `secondary-63`, `foo`). */
export function parseDaemonId(name: string): DaemonId | undefined {
  if (name === 'main') return MAIN;
  if (name === 'watchdog') return WATCHDOG;
  const m = /^secondary-([1-9][0-9]*)$/.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return isSecondaryInstance(n) ? { kind: 'secondary', instance: n } : undefined;
}

/** A secondary's name as a table column shows it: `secondary-2` → `2` (other names unchanged). */
export function shortDaemonName(name: string): string {
  const id = parseDaemonId(name);
  return id?.kind === 'secondary' ? String(id.instance) : name;
}

/** Whether `name` names a daemon of the suite (for schemas: `z.string().refine(isDaemonName)`). */
export function isDaemonName(name: string): boolean {
  return parseDaemonId(name) !== undefined;
}

/** Whether two ids name the same daemon. */
export function sameDaemon(a: DaemonId, b: DaemonId): boolean {
  return a.kind === b.kind && instanceOf(a) === instanceOf(b);
}

/** The scoreboard slot index (docs/SCOREBOARD.md §2): main 0, watchdog 1, secondary N at N + 1. */
export function slotIndexOf(id: DaemonId): number {
  return id.kind === 'main' ? 0 : id.kind === 'watchdog' ? 1 : 1 + id.instance;
}

/** The daemon in a slot index, or undefined past the last slot. */
export function daemonAtSlot(index: number): DaemonId | undefined {
  if (index === 0) return MAIN;
  if (index === 1) return WATCHDOG;
  return isSecondaryInstance(index - 1) ? { kind: 'secondary', instance: index - 1 } : undefined;
}

/** The number of scoreboard slots: main, the watchdog and every possible secondary. */
export const SLOT_COUNT = 2 + MAX_SECONDARIES;

// ---- systemd units --------------------------------------------------------------------

/** The target that groups the suite. */
export const SUITE_TARGET = 'dispatchd.target';
/** The slice every unit of the suite runs in (systemd-cgls, systemd-cgtop). */
export const SUITE_SLICE = 'dispatchd.slice';
/** The oneshot unit that creates and removes the scoreboard. */
export const SCOREBOARD_UNIT = 'dispatchd-scoreboard.service';

/** The service unit that runs a daemon: dispatchd-main.service, dispatchd-secondary@N.service. */
export function serviceUnit(id: DaemonId): string {
  return id.kind === 'secondary' ? `dispatchd-secondary@${id.instance}.service` : `dispatchd-${id.kind}.service`;
}

/** The socket unit of a daemon's client socket (fd name `client`); the watchdog has none. */
export function clientSocketUnit(id: ServingId): string {
  return id.kind === 'main' ? 'dispatchd-main.socket' : `dispatchd-secondary@${id.instance}.socket`;
}

/** The socket unit of a daemon's mailbox FIFO (fd name `mailbox`). */
export function mailboxSocketUnit(id: DaemonId): string {
  switch (id.kind) {
    case 'main':
      return 'dispatchd-main-mailbox.socket';
    case 'watchdog':
      return 'dispatchd-watchdog.socket';
    case 'secondary':
      return `dispatchd-secondary-mailbox@${id.instance}.socket`;
  }
}

/** The socket units a daemon's service takes its fds from, client socket first (none for the watchdog's client side). */
export function socketUnits(id: DaemonId): string[] {
  return id.kind === 'watchdog' ? [mailboxSocketUnit(id)] : [clientSocketUnit(id), mailboxSocketUnit(id)];
}

/** Every unit of a daemon: its service, then its sockets. */
export function unitsOf(id: DaemonId): string[] {
  return [serviceUnit(id), ...socketUnits(id)];
}

/**
 * The service unit of a daemon given by its name (`main`, `secondary-2`, `watchdog`).
 * @throws RangeError for a name that is no daemon of the suite.
 */
export function serviceUnitOf(name: string): string {
  const id = parseDaemonId(name);
  if (!id) throw new RangeError(`'${name}' is not a daemon of the suite: main, watchdog or secondary-N (N 1..${MAX_SECONDARIES})`);
  return serviceUnit(id);
}

/**
 * The daemon a service unit runs: dispatchd-main.service → main, dispatchd-secondary@2.service
 * → secondary 2, dispatchd-watchdog.service → the watchdog; undefined for any other unit.
 */
export function daemonOfUnit(unit: string): DaemonId | undefined {
  if (unit === 'dispatchd-main.service') return MAIN;
  if (unit === 'dispatchd-watchdog.service') return WATCHDOG;
  const m = /^dispatchd-secondary@([1-9][0-9]*)\.service$/.exec(unit);
  if (!m) return undefined;
  const n = Number(m[1]);
  return isSecondaryInstance(n) ? { kind: 'secondary', instance: n } : undefined;
}

/** A glob that matches every secondary's service unit, for systemctl. */
export const SECONDARY_UNIT_GLOB = 'dispatchd-secondary@*.service';

/**
 * The units the watchdog lists, as unit-name patterns: the services it probes and may restart
 * (main and every secondary), and their mailbox sockets (a service that is inactive while its
 * mailbox socket listens is woken by a ping: socket activation).
 */
export const PROBED_UNIT_PATTERNS: readonly string[] = [serviceUnit(MAIN), SECONDARY_UNIT_GLOB, mailboxSocketUnit(MAIN), 'dispatchd-secondary-mailbox@*.socket'];

/**
 * The secondary instances named by the service units in a whitespace-separated list (the
 * output of `systemctl show -p Wants` or `list-units`), ascending, each once; anything else,
 * an instance past {@link MAX_SECONDARIES} included, is skipped.
 */
export function secondaryInstancesIn(text: string): number[] {
  const out = new Set<number>();
  for (const word of text.split(/\s+/)) {
    const id = daemonOfUnit(word);
    if (id?.kind === 'secondary') out.add(id.instance);
  }
  return [...out].sort((a, b) => a - b);
}

// ---- files ----------------------------------------------------------------------------

/** A daemon's mailbox FIFO in the runtime directory: main.fifo, watchdog.fifo, secondary-N.fifo. */
export function mailboxPath(runtimeDir: string, id: DaemonId): string {
  return `${runtimeDir}/${formatDaemonId(id)}.fifo`;
}

/**
 * A daemon's client socket in the runtime directory (main.sock, secondary-N.sock).
 * @throws RangeError for the watchdog, which has none.
 */
export function clientSocketPath(runtimeDir: string, id: DaemonId): string {
  if (id.kind === 'watchdog') throw new RangeError('the watchdog has no client socket');
  return `${runtimeDir}/${formatDaemonId(id)}.sock`;
}

/** The fd names (LISTEN_FDNAMES) a daemon's service receives from its socket units. */
export const FD_NAMES = { client: 'client', mailbox: 'mailbox' } as const;

/** A daemon's entry point, relative to the package's build directory (/usr/lib/dispatchd/build). */
export function entryPoint(kind: DaemonKind): string {
  return kind === 'main' ? 'daemons/main-server/main.js' : kind === 'secondary' ? 'daemons/secondary-server/main.js' : 'daemons/watchdog/main.js';
}

/** Every daemon of a suite with secondaries 1..n, main first, then the secondaries, then the watchdog. */
export function suiteDaemons(secondaries: number): DaemonId[] {
  const out: DaemonId[] = [MAIN];
  for (let n = 1; n <= secondaries; n++) out.push(secondary(n));
  out.push(WATCHDOG);
  return out;
}

/**
 * Where secondary N publishes the request types it serves, with their per-type counters:
 * a JSON file beside the scoreboard (`/dev/shm/dispatchd.scoreboard.secondary-N.types`),
 * docs/SCOREBOARD.md §6. Main routes by it; dispatchctl types and status read it.
 */
export function servedTypesPath(scoreboardFile: string, id: DaemonId): string {
  return `${scoreboardFile}.${formatDaemonId(id)}.types`;
}

// ---- persistent workers (docs/WORKERS.md) ----------------------------------------------

/**
 * A persistent worker of a type: process K (1..`processes`) of request type `type`. Its
 * instance name is `TYPE-K` (type names are [a-z][a-z0-9-]*, so the last dash splits).
 */
export interface WorkerId {
  readonly type: string;
  readonly index: number;
}

/** The template the generator instantiates per worker, and its socket template. */
export const WORKER_SERVICE_TEMPLATE = 'dispatchd-worker@.service';
export const WORKER_SOCKET_TEMPLATE = 'dispatchd-worker@.socket';
/** The fd name (LISTEN_FDNAMES) of a worker's listening socket. */
export const WORKER_FD_NAME = 'worker';

/** A worker's instance name: `TYPE-K`. */
export function workerInstance(w: WorkerId): string {
  return `${w.type}-${w.index}`;
}

/** The service unit of a worker: dispatchd-worker@TYPE-K.service. */
export function workerServiceUnit(w: WorkerId): string {
  return `dispatchd-worker@${workerInstance(w)}.service`;
}

/** The socket unit of a worker: dispatchd-worker@TYPE-K.socket. */
export function workerSocketUnit(w: WorkerId): string {
  return `dispatchd-worker@${workerInstance(w)}.socket`;
}

/** The socket the secondaries connect to: RUNTIME/worker-TYPE-K.sock (the socket unit's ListenStream=). */
export function workerSocketPath(runtimeDir: string, w: WorkerId): string {
  return `${runtimeDir}/worker-${workerInstance(w)}.sock`;
}

/** The worker a worker service unit runs; undefined for any other unit. */
export function workerOfUnit(unit: string): WorkerId | undefined {
  const m = /^dispatchd-worker@([a-z][a-z0-9-]{0,62})-([1-9][0-9]*)\.service$/.exec(unit);
  return m ? { type: m[1]!, index: Number(m[2]) } : undefined;
}

/**
 * The suite's lease key (docs/PROTOCOL.md §2.2): 32 random bytes beside the scoreboard
 * (`/dev/shm/dispatchd.scoreboard.lease-key`), mode 0400, owner dispatchd, made fresh by the
 * scoreboard keeper at each start of the suite and removed at its stop.
 */
export function leaseKeyPath(scoreboardFile: string): string {
  return `${scoreboardFile}.lease-key`;
}
