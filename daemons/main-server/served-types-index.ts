/**
 * Main's view of which secondary serves which request type: the served-types files the
 * secondaries publish beside the scoreboard (common/served-types.ts), read when a
 * secondary's generation changes (it restarted), when it says `ready` (it started or
 * reloaded), and, at most every {@link FORCED_SYNC_MS}, when a client asks for a type no
 * known secondary serves. Main routes a lease only to a secondary that serves its type and
 * answers UNKNOWN_TYPE itself for a type none serves, reserving nothing.
 */
import type { SlotData } from '../common/scoreboard.js';
import { readServedTypes, type ServedTypesFile } from '../common/served-types.js';
import { secondary, servedTypesPath } from '../common/topology.js';

/** A client naming an unknown type makes main re-read every file at most this often (ms). */
export const FORCED_SYNC_MS = 200;

/** Who serves a type. */
export interface TypeRoute {
  /** The secondaries (instance numbers) that publish it, live or not. */
  instances: ReadonlySet<number>;
  /** False if any of them declares it not idempotent (a reload in progress may disagree). */
  idempotent: boolean;
}

export class ServedTypesIndex {
  private readonly files = new Map<number, ServedTypesFile>();
  private routes = new Map<string, TypeRoute>();
  private lastForcedMs = -Infinity;

  constructor(
    private readonly scoreboardFile: string,
    private readonly read: (file: string) => ServedTypesFile | undefined = readServedTypes,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Brings the index in line with the secondaries on the scoreboard: re-reads the file of each
   * one whose generation differs from what the index holds (or every one, with `force`).
   */
  sync(slots: readonly SlotData[], force = false): void {
    let dirty = false;
    const present = new Set<number>();
    for (const s of slots) {
      if (s.kind !== 'secondary') continue;
      present.add(s.instance);
      const held = this.files.get(s.instance);
      if (!force && held?.generation === s.generation) continue;
      dirty = this.load(s.instance, s.generation) || dirty;
    }
    for (const n of this.files.keys()) {
      if (!present.has(n)) {
        this.files.delete(n);
        dirty = true;
      }
    }
    if (dirty) this.rebuild();
  }

  /** Re-reads secondary N's file (it said `ready` with this generation). */
  refresh(instance: number, generation: number): void {
    if (this.load(instance, generation)) this.rebuild();
  }

  /**
   * Like {@link sync} with `force`, for a type no known secondary serves, but at most every
   * {@link FORCED_SYNC_MS}: a client asking for nonsense in a loop costs no file reads.
   */
  syncForUnknown(slots: readonly SlotData[]): void {
    const now = this.now();
    if (now - this.lastForcedMs < FORCED_SYNC_MS) return;
    this.lastForcedMs = now;
    this.sync(slots, true);
  }

  /** Who serves `type`, or undefined when no secondary publishes it. */
  lookup(type: string): TypeRoute | undefined {
    return this.routes.get(type);
  }

  /** Whether the index holds what secondary N of this generation published. */
  knows(instance: number, generation: number): boolean {
    return this.files.get(instance)?.generation === generation;
  }

  /** Every type some secondary publishes, sorted. */
  known(): string[] {
    return [...this.routes.keys()].sort();
  }

  /** Returns whether the index changed. */
  private load(instance: number, generation: number): boolean {
    const f = readOrUndefined(this.read, servedTypesPath(this.scoreboardFile, secondary(instance)));
    if (f && f.generation === generation && f.secondary === instance) {
      this.files.set(instance, f);
      return true;
    }
    // Not published yet by this generation: what an earlier one served stays the best guess
    // (a restart rarely changes the types); its `ready` message brings the new file.
    return false;
  }

  private rebuild(): void {
    const routes = new Map<string, { instances: Set<number>; idempotent: boolean }>();
    for (const [n, f] of this.files) {
      for (const t of f.types) {
        const r = routes.get(t.name) ?? { instances: new Set<number>(), idempotent: true };
        r.instances.add(n);
        r.idempotent &&= t.idempotent;
        routes.set(t.name, r);
      }
    }
    this.routes = routes;
  }
}

function readOrUndefined(read: (file: string) => ServedTypesFile | undefined, file: string): ServedTypesFile | undefined {
  try {
    return read(file);
  } catch {
    return undefined;
  }
}
