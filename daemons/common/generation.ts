import { randomInt } from 'node:crypto';

/** A daemon's generation: a random, non-zero 32-bit number drawn at each process start. */
export function newGeneration(): number {
  return randomInt(1, 0xffffffff);
}
