/**
 * Requests through the installed suite: 16 MiB binary payloads, and many clients at once.
 */
import t from 'tap';
import { installedSuite, journalErrors } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const MiB16 = 16 * 1024 * 1024;

  t.test('sha256 of a 16 MiB random binary file matches sha256sum', async (t) => {
    await sb.out(`head -c ${MiB16} /dev/urandom > /root/blob`);
    const expected = (await sb.out('sha256sum /root/blob')).split(' ')[0];
    const r = await sb.sh('dispatchctl request sha256 - < /root/blob');
    t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.trim()})`);
    t.equal(r.stdout.toString().trim(), expected, `sha256 is ${expected}`);
    t.comment(`sha256 of 16 MiB took ${r.ms} ms`);
  });

  t.test('echo returns a 16 MiB binary file byte for byte', async (t) => {
    const r = await sb.sh('dispatchctl request echo - < /root/blob > /root/blob.out; cmp /root/blob /root/blob.out && echo same');
    t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.trim()})`);
    t.equal(r.stdout.toString().trim(), 'same', 'cmp finds no difference');
  });

  t.test('50 concurrent requests all succeed', async (t) => {
    // 50 dispatchctl processes at once, each with its own payload; every one must exit 0
    // and print exactly its own payload back.
    const script = `
      mkdir -p /root/conc && cd /root/conc && rm -f ./*
      for i in $(seq 1 50); do
        ( dispatchctl request echo "payload-$i-$RANDOM" >"$i.out" 2>"$i.err"; echo $? >"$i.rc" ) &
      done
      wait
      for i in $(seq 1 50); do printf '%s %s %s\\n' "$i" "$(cat "$i.rc")" "$(cat "$i.out")"; done`;
    const r = await sb.sh(script, { timeoutMs: 180_000 });
    t.equal(r.code, 0, `the script ran (stderr: ${r.stderr.trim()})`);
    const lines = r.stdout.toString().trim().split('\n');
    t.equal(lines.length, 50, '50 results');
    const failed = lines.filter((l) => !/^(\d+) 0 payload-\1-\d+$/.test(l));
    if (failed.length > 0) {
      const errs = await sb.out('cd /root/conc && for f in *.err; do [ -s "$f" ] && echo "$f: $(cat "$f")"; done || true');
      t.fail(`${failed.length} of 50 requests failed: ${failed.slice(0, 5).join('; ')}\n${errs}`);
    } else {
      t.pass(`all 50 succeeded with their own payload in ${r.ms} ms`);
    }
  });

  t.test('requests are counted on the scoreboard', async (t) => {
    const status = JSON.parse(await sb.out('dispatchctl status --json')) as { daemons: Array<{ name: string; requests: number }> };
    const served = status.daemons.filter((d) => d.name.startsWith('secondary-')).reduce((n, d) => n + d.requests, 0);
    t.ok(served >= 52, `the secondaries served ${served} requests (at least 52)`);
  });

  t.test('no errors in the journal', async (t) => {
    t.equal(await journalErrors(sb, 'dispatchd-main'), '', 'journalctl -u dispatchd-main -p err is empty');
    t.equal(await journalErrors(sb, 'dispatchd-secondary@*'), '', 'no secondary logged an error');
    t.equal(await journalErrors(sb, 'dispatchd-watchdog'), '', 'the watchdog logged no error');
  });
}
