/** The repository's root directory (test/chaos/lib/paths.ts finds it from its own location). */
export { ROOT as REPO } from '../../chaos/lib/paths.js';
