/**
 * zod's wording of a range error, said as the rest of dispatchd's messages are: "must be at
 * least 1" rather than zod's "Too small: expected number to be >=1". Installed once per
 * process (zod's global `z.config`) by importing this module: config.ts, types-file.ts and
 * protocol.ts do, whose schemas check what a user or a client wrote. Every other issue keeps
 * zod's English message.
 */
import { z } from 'zod';

/** What a length counts, by the kind of value zod measured. */
const UNITS: Readonly<Record<string, string>> = { string: 'character', array: 'item', set: 'item', file: 'byte' };

/** The fields of a zod range issue this module reads. */
export interface RangeIssue {
  code: string;
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
}

/**
 * The message of a too_small or too_big issue ("must be at least 1", "must be less than 10",
 * "must have at most 3 items"); undefined for any other issue (zod's own message then).
 */
export function rangeMessage(iss: RangeIssue): string | undefined {
  if (iss.code !== 'too_small' && iss.code !== 'too_big') return undefined;
  const small = iss.code === 'too_small';
  const bound = small ? iss.minimum : iss.maximum;
  if (bound === undefined) return undefined;
  const unit = iss.origin ? UNITS[iss.origin] : undefined;
  if (unit) return `must have ${small ? 'at least' : 'at most'} ${bound} ${unit}${bound === 1 || bound === 1n ? '' : 's'}`;
  if (iss.origin !== 'number' && iss.origin !== 'bigint') return undefined;
  const inclusive = iss.inclusive !== false;
  return `must be ${small ? (inclusive ? 'at least' : 'more than') : inclusive ? 'at most' : 'less than'} ${bound}`;
}

z.config({ customError: (iss) => rangeMessage(iss as RangeIssue) });
