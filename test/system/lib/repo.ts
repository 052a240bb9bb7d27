/** The repository's root directory, found from this file's location (test/system/lib/). */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
