/** Which main process runs, as a just-started secondary reads it from the scoreboard (running-main.ts). */
import t from 'tap';
import { createScoreboard } from '../../../daemons/common/scoreboard-file.js';
import { SlotWriter } from '../../../daemons/common/slot-writer.js';
import { runningMainGeneration } from '../../../daemons/secondary-server/running-main.js';
import { newFile } from '../lib/scoreboard-files.js';

t.test("the running main's generation; none when main's slot says stopped, is absent, or the file is", async (t) => {
  const file = newFile();
  createScoreboard(file);
  t.equal(runningMainGeneration(file), undefined, 'no main slot yet');
  const main = new SlotWriter(file, 'main', 0, { pid: 4242, generation: 77 });
  t.teardown(() => main.close());
  main.publish();
  t.equal(runningMainGeneration(file), 77, 'main starting: its generation');
  main.data.state = 'ready';
  main.publish();
  t.equal(runningMainGeneration(file), 77, 'main ready: its generation');
  main.data.state = 'stopped';
  main.publish();
  t.equal(runningMainGeneration(file), undefined, 'main stopped: none (the next main that asks is a new one)');
  t.equal(runningMainGeneration(`${file}.missing`), undefined, 'no scoreboard: none, no exception');
});
