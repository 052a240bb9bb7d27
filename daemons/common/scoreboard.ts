/**
 * The scoreboard (docs/SCOREBOARD.md) in one import: its layout and codec
 * (scoreboard-layout.ts), the file's creation and removal (scoreboard-file.ts), the
 * seqlock reader (scoreboard-reader.ts) and a slot's writer (slot-writer.ts).
 */
export * from './scoreboard-layout.js';
export { createScoreboard, removeScoreboard, scoreboardIoError } from './scoreboard-file.js';
export { ScoreboardReader, type ScoreboardSnapshot } from './scoreboard-reader.js';
export { SlotWriter } from './slot-writer.js';
