import t from 'tap';
import { newGeneration } from '../../../daemons/common/generation.js';

t.test('a generation is a random, non-zero 32-bit number', async (t) => {
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const g = newGeneration();
    if (!Number.isInteger(g) || g < 1 || g > 0xffffffff) t.fail(`out of range: ${g}`);
    seen.add(g);
  }
  t.ok(seen.size > 9_990, `practically never repeats (${seen.size} distinct in 10 000)`);
  t.ok([...seen].some((g) => g > 0x7fffffff), 'uses the high bit too (fits u32 fields, not only i32)');
});
