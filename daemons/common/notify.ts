/**
 * Service manager notifications (sd_notify(3)) through the `sd-notify` native addon over
 * libsystemd: READY=1, STATUS=, WATCHDOG=1, STOPPING=1. Outside systemd (no NOTIFY_SOCKET)
 * every call is a no-op, so daemons run unchanged in tests.
 */
import { createRequire } from 'node:module';
import { systemClock, type Clock } from './clock.js';

/** The part of the `sd-notify` addon dispatchd uses. */
export interface NotifyBinding {
  /** sd_notify(0, state): `state` is newline-separated VAR=value assignments. */
  sendState(state: string): void;
  /** WATCHDOG_USEC in ms when the watchdog is enabled for this process, else 0. */
  watchdogInterval(): number;
}

/** Loads the `sd-notify` addon (libsystemd's sd_notify). */
export function loadNotifyBinding(): NotifyBinding {
  const require = createRequire(import.meta.url);
  const mod = require('sd-notify') as { sendState(s: string): void; watchdogInterval(): number };
  return { sendState: (s) => mod.sendState(s), watchdogInterval: () => mod.watchdogInterval() };
}

/** Strips what sd_notify cannot carry in a STATUS= value (newlines). */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/**
 * A daemon's channel to systemd. `keepalive()` must be called from the daemon's own event
 * loop work (a timer or its probe loop), so that a stuck loop stops the pings and systemd's
 * WatchdogSec= catches it.
 */
export class Notifier {
  private lastKeepalive = 0;
  private lastStatus: string | undefined;
  private timer: unknown;
  /** The systemd watchdog period (WATCHDOG_USEC) in ms, 0 when disabled. */
  readonly watchdogMs: number;

  /** @param clock the ticks' timers and time (a fake clock in unit tests). */
  constructor(private readonly binding: NotifyBinding, private readonly clock: Clock = systemClock) {
    this.watchdogMs = binding.watchdogInterval();
  }

  /** Interval at which to send WATCHDOG=1: half of WATCHDOG_USEC (sd_watchdog_enabled(3)), ms; 0 if disabled. */
  get keepaliveIntervalMs(): number {
    return Math.floor(this.watchdogMs / 2);
  }

  /** READY=1 with a status line: only once the daemon can serve. */
  ready(status: string): void {
    this.lastStatus = oneLine(status);
    this.binding.sendState(`READY=1\nSTATUS=${this.lastStatus}`);
  }

  /** RELOADING=1: a configuration reload began; {@link ready} ends it (sd_notify(3)). */
  reloading(status: string): void {
    this.lastStatus = oneLine(status);
    this.binding.sendState(`RELOADING=1\nSTATUS=${this.lastStatus}`);
  }

  /** STATUS=, shown by `systemctl status`; sent only when it changed (each message wakes systemd). */
  status(status: string): void {
    const line = oneLine(status);
    if (line === this.lastStatus) return;
    this.lastStatus = line;
    this.binding.sendState(`STATUS=${line}`);
  }

  /**
   * WATCHDOG=1, sent at most once per quarter of WATCHDOG_USEC however often it is called.
   * @param now current time in ms (Date.now()).
   */
  keepalive(now: number = this.clock.now()): void {
    if (this.watchdogMs === 0) return;
    if (now - this.lastKeepalive < this.watchdogMs / 4) return;
    this.lastKeepalive = now;
    this.binding.sendState('WATCHDOG=1');
  }

  /**
   * Calls `tick` every `everyMs` (or at half of WATCHDOG_USEC if shorter) on the event loop
   * and sends WATCHDOG=1 after it; the tick is where a daemon refreshes its heartbeat.
   * `everyMs` as a function is read before each wait, so a reloaded period applies from the
   * next tick on. Calling it again replaces the running ticks.
   */
  startTicking(tick: (now: number) => void, everyMs: number | (() => number)): void {
    const period = typeof everyMs === 'number' ? () => everyMs : everyMs;
    const next = () => {
      const ms = period();
      const handle = this.clock.setTimeout(() => {
        const now = this.clock.now();
        tick(now);
        this.keepalive(now);
        if (this.timer === handle) next(); // not stopped or replaced by the tick
      }, this.keepaliveIntervalMs > 0 ? Math.min(ms, this.keepaliveIntervalMs) : ms);
      this.timer = handle;
    };
    this.stopTicking();
    next();
  }

  private stopTicking(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** STOPPING=1 with a status line, and stops the keepalive timer. */
  stopping(status: string): void {
    this.stopTicking();
    this.lastStatus = oneLine(status);
    this.binding.sendState(`STOPPING=1\nSTATUS=${this.lastStatus}`);
  }
}
