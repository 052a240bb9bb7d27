/**
 * User-defined request types under the sandbox's systemd, with the installed .deb: the
 * README's "Run your own work" steps with the shipped examples (an exec handler with tr, a
 * Python script, a JavaScript module), `dispatchctl types`, routing (UNKNOWN_TYPE from main,
 * a lease bound to its type, types pinned to one secondary), check-config's refusals, a bad
 * types file at start, and types added, changed and removed by a reload under load.
 */
import t from 'tap';
import { until } from '../helpers/index.js';
import { installedSuite, journalNow, untilUnits } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const EXAMPLES = '/usr/share/doc/dispatchd/examples/types.d';
  const request = (args: string) => sb.sh(`dispatchctl request ${args}`, { timeoutMs: 60_000 });
  const reload = async () => {
    const r = await sb.sh('dispatchctl check-config && systemctl reload dispatchd.target');
    if (r.code !== 0) throw new Error(`reload failed: ${r.stdout.toString()}${r.stderr}`);
  };
  const restarts = async () => (await sb.out("for u in dispatchd-main dispatchd-secondary@1 dispatchd-secondary@2 dispatchd-watchdog; do systemctl show -p NRestarts --value $u.service; done")).trim();

  t.test('Run your own work: the shipped examples, installed as the README says, answer', async (t) => {
    await sb.out(`
      install -D -m 0755 ${EXAMPLES}/wordcount.py /usr/local/lib/dispatchd/wordcount.py
      install -D -m 0644 ${EXAMPLES}/greet.mjs /usr/local/lib/dispatchd/greet.mjs
      install -m 0644 ${EXAMPLES}/upper.toml ${EXAMPLES}/wordcount.toml ${EXAMPLES}/greet.toml /etc/dispatchd/types.d/`);
    await reload();
    const upper = await request("upper 'hello, world'");
    t.equal(upper.code, 0, `upper: exit 0 (${upper.stderr.trim()})`);
    t.equal(upper.stdout.toString(), 'HELLO, WORLD', 'the exec handler (tr) answered');
    const wc = await sb.sh("printf 'one two\\nthree\\n' | dispatchctl request wordcount");
    t.equal(wc.code, 0, `wordcount: exit 0 (${wc.stderr.trim()})`);
    t.same(JSON.parse(wc.stdout.toString()), { lines: 2, words: 3, bytes: 14 }, 'the Python handler answered');
    const greet = await request('greet Ada');
    t.equal(greet.code, 0, `greet: exit 0 (${greet.stderr.trim()})`);
    t.equal(greet.stdout.toString(), 'hello, Ada\n', 'the module handler answered');
    const log = await sb.out("journalctl --no-pager -o verbose -u 'dispatchd-secondary@*' -g 'greeting Ada' | grep -E '^ +(TYPE|LEASE|SECONDARY)=' || true");
    t.match(log, /TYPE=greet/, "ctx.log reached the journal with TYPE=");
    t.match(log, /LEASE=[0-9a-f]{82}\b/, 'and LEASE=');
  });

  t.test('dispatchctl types lists every type, its limits, where it is declared and who serves it', async (t) => {
    const { types } = JSON.parse(await sb.out('dispatchctl types --json')) as { types: Array<Record<string, unknown>> };
    t.same(types.map((x) => x.name), ['echo', 'greet', 'sha256', 'sleep', 'upper', 'wordcount']);
    const upper = types.find((x) => x.name === 'upper')!;
    t.match(upper, { handler: 'exec', target: '/usr/bin/tr a-z A-Z', deadline_ms: 5000, concurrency: 4, idempotent: true, declared_in: '/etc/dispatchd/types.d/upper.toml:5', served_by: ['secondary-1', 'secondary-2'] });
    t.ok((upper.requests as number) >= 1, 'its requests are counted');
    t.match(types.find((x) => x.name === 'echo'), { handler: 'builtin', declared_in: /^\/usr\/share\/dispatchd\/types\.d\/00-builtin\.toml:\d+$/ });
    const table = await sb.out('dispatchctl types');
    t.match(table, /^NAME +HANDLER +IDEMPOTENT/m);
    t.match(table, /^greet +module +yes .* 1,2 .*\/usr\/local\/lib\/dispatchd\/greet\.mjs$/m);
  });

  t.test('an unknown type is refused by main, reserving nothing; a lease is good for its own type only', async (t) => {
    const r = await request('nosuchtype x');
    t.equal(r.code, 65, 'exit 65');
    t.match(r.stderr, /no secondary serves request type 'nosuchtype'; the types served: echo, greet, sha256, sleep, upper, wordcount .*\[UNKNOWN_TYPE\]/);
    const script = `
      const { DispatchClient, Session } = await import('/usr/lib/dispatchd/build/daemons/client/client.js');
      const client = new DispatchClient();
      const grant = await client.lease('echo');
      const s = await Session.open(grant, 1 << 20, 5000);
      try { await s.run('sha256', Buffer.from('x'), 5000); console.log('RAN'); } catch (e) { console.log(e.code); }
      console.log((await s.run('echo', Buffer.from('still good'), 5000)).toString());
      s.close();`;
    const out = await sb.out(`node --input-type=module -e "${script.replace(/"/g, '\\"').replace(/\$/g, '\\$')}"`);
    t.same(out.trim().split('\n'), ['LEASE_WRONG_TYPE', 'still good'], 'a run frame of another type is refused, nothing runs, the lease stays good for its type');
  });

  t.test('types pinned to one secondary are served there only', async (t) => {
    await sb.out(`cat > /etc/dispatchd/types.d/heavy.toml <<'EOF'
[type.heavy]
handler = "builtin"
builtin = "sha256"
EOF
cp /etc/dispatchd/dispatchd.conf /root/dispatchd.conf.orig
sed -i 's/^#serve = .*/serve = ["echo", "sha256", "sleep", "upper", "wordcount", "greet"]/' /etc/dispatchd/dispatchd.conf
cat >> /etc/dispatchd/dispatchd.conf <<'EOF'

[secondary.instance.2]
serve = ["heavy"]
EOF`);
    await reload();
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await request('heavy --verbose abc');
      t.equal(r.code, 0, `heavy: exit 0 (${r.stderr.trim()})`);
      served.add(/served by (secondary-\d+)/.exec(r.stderr)?.[1] ?? '?');
    }
    t.same([...served], ['secondary-2'], 'every heavy request ran on secondary 2');
    for (let i = 0; i < 6; i++) {
      const r = await request('echo --verbose abc');
      t.match(r.stderr, /served by secondary-1/, 'echo runs on secondary 1 only (2 serves only heavy)');
    }
    const { types } = JSON.parse(await sb.out('dispatchctl types --json')) as { types: Array<{ name: string; served_by: string[] }> };
    t.same(types.find((x) => x.name === 'heavy')!.served_by, ['secondary-2']);
    t.same(types.find((x) => x.name === 'echo')!.served_by, ['secondary-1']);
    await sb.out('cp /root/dispatchd.conf.orig /etc/dispatchd/dispatchd.conf && rm /etc/dispatchd/types.d/heavy.toml');
    await reload();
  });

  t.test('check-config refuses a types file that cannot serve, naming file, line and key; the suite keeps serving', async (t) => {
    const cases: Array<[string, string, RegExp]> = [
      ['a key that does not exist', '[type.bad]\nhandler = "exec"\ncommand = ["/bin/cat"]\ntimeout = 5\n', /bad\.toml' line 4: unknown key 'type\.bad\.timeout'/],
      ['a missing program', '[type.bad]\nhandler = "exec"\ncommand = ["/usr/bin/nonexistent"]\n', /type 'bad' .*bad\.toml' line 1\): command '\/usr\/bin\/nonexistent' cannot be found/],
      ['a program user dispatchd cannot run', '[type.bad]\nhandler = "exec"\ncommand = ["/usr/local/lib/dispatchd/private.sh"]\n', /command '\/usr\/local\/lib\/dispatchd\/private\.sh' is not executable by user 'dispatchd'/],
      ['a program the secondaries cannot see', '[type.bad]\nhandler = "exec"\ncommand = ["/root/private.sh"]\n', /'\/root\/private\.sh' is under \/root\/, which the secondaries' sandbox hides/],
      ['a missing module', '[type.bad]\nhandler = "module"\nmodule = "/nonexistent.mjs"\n', /module '\/nonexistent\.mjs' cannot serve requests: importing it failed/],
      ['a module without a function', '[type.bad]\nhandler = "module"\nmodule = "/usr/local/lib/dispatchd/nofn.mjs"\n', /default export is missing, not a function/],
      ['a type declared twice', '[type.upper]\nhandler = "exec"\ncommand = ["/bin/cat"]\n', /type 'upper' is declared twice: in '\/etc\/dispatchd\/types\.d\/bad\.toml' line 1 and in '\/etc\/dispatchd\/types\.d\/upper\.toml' line 5/],
    ];
    await sb.out("printf '#!/bin/sh\\ncat\\n' > /root/private.sh && chmod 0700 /root/private.sh && install -m 0700 /root/private.sh /usr/local/lib/dispatchd/private.sh && echo 'export const x = 1;' > /usr/local/lib/dispatchd/nofn.mjs");
    for (const [what, text, message] of cases) {
      await sb.out(`cat > /etc/dispatchd/types.d/bad.toml <<'EOF'\n${text}EOF`);
      const r = await sb.sh('dispatchctl check-config');
      t.equal(r.code, 78, `${what}: exit 78`);
      t.match(r.stderr, message, what);
    }
    await sb.out(`printf '[type.ok]\\nhandler = "builtin"\\nbuiltin = "echo"\\n' > /etc/dispatchd/types.d/bad.toml`);
    await sb.out('chmod 0664 /etc/dispatchd/types.d/bad.toml');
    let r = await sb.sh('dispatchctl check-config');
    t.equal(r.code, 78, 'group-writable: exit 78');
    t.match(r.stderr, /mode 0664 lets group or others write it/);
    await sb.out('chmod 0644 /etc/dispatchd/types.d/bad.toml && chown nobody /etc/dispatchd/types.d/bad.toml');
    r = await sb.sh('dispatchctl check-config');
    t.equal(r.code, 78, 'not owned by root: exit 78');
    t.match(r.stderr, /owned by uid \d+, not root/);
    const reloadRefused = await sb.sh('systemctl reload dispatchd-secondary@1.service');
    t.not(reloadRefused.code, 0, "a unit's reload refuses it too");
    const still = await request('upper still');
    t.equal(still.stdout.toString(), 'STILL', 'the suite serves on with the types it had');
    await sb.out('rm /etc/dispatchd/types.d/bad.toml');
  });

  t.test('a bad types file at start: the secondary exits 78 and is not restarted, the journal says why', async (t) => {
    await sb.out(`printf '[type.broken]\\nhandler = "exec"\\n' > /etc/dispatchd/types.d/broken.toml`);
    const since = await journalNow(sb);
    const unit = 'dispatchd-secondary@2.service';
    t.teardown(async () => {
      await sb.out(`rm -f /etc/dispatchd/types.d/broken.toml && systemctl reset-failed 'dispatchd-*' && systemctl start ${unit}`);
      await untilUnits(sb, [unit], 'active', 20_000);
    });
    const restart = await sb.sh(`systemctl restart ${unit}`);
    t.not(restart.code, 0, 'systemctl restart reports the failure');
    // systemd's own line for the exit; a later start (socket activation) cannot hide it.
    const exited = await until(`${unit} to exit 78`, 20_000, async () => {
      const out = await sb.out(`journalctl --no-pager -q -o cat -u ${unit} --since '${since}' | grep -E 'Main process exited, code=exited, status=78' || true`);
      return out.trim() || undefined;
    }, { everyMs: 250 });
    t.match(exited, /status=78/, 'exit 78');
    t.equal((await sb.show(unit, 'NRestarts')).NRestarts, '0', 'not restarted in a loop (RestartPreventExitStatus=78)');
    const err = await sb.out(`journalctl --no-pager -q -u ${unit} -p err --since '${since}'`);
    t.match(err, /broken\.toml.*type\.broken/, 'the journal names the file and the type');
  });

  t.test('types added, changed and removed by a reload under load: no request fails', async (t) => {
    const before = await restarts();
    // 10 shell loops of echo requests through the reloads, each counting failures.
    const load = sb.sh(`
      rm -rf /root/load && mkdir /root/load
      for i in $(seq 1 10); do
        ( ok=0; bad=0; end=$(( $(date +%s) + 8 ))
          while [ "$(date +%s)" -lt "$end" ]; do
            if dispatchctl request echo "x$i" >/dev/null 2>>/root/load/$i.err; then ok=$((ok+1)); else bad=$((bad+1)); fi
          done; echo "$ok $bad" > /root/load/$i.res ) &
      done; wait; cat /root/load/*.res; cat /root/load/*.err`, { timeoutMs: 120_000 });
    await sb.out(`printf '[type.added]\\nhandler = "exec"\\ncommand = ["/usr/bin/rev"]\\n' > /etc/dispatchd/types.d/added.toml`);
    await reload();
    const added = await request('added abc');
    t.equal(added.stdout.toString(), 'cba', 'a type added by a reload answers (rev: no newline in, none out)');
    await sb.out(`sed -i 's|"/usr/bin/rev"|"/usr/bin/tac"|' /etc/dispatchd/types.d/added.toml`);
    await reload();
    const changed = await sb.sh("printf 'a\\nb\\n' | dispatchctl request added");
    t.equal(changed.stdout.toString(), 'b\na\n', 'a type changed by a reload runs its new command');
    await sb.out('rm /etc/dispatchd/types.d/added.toml');
    await reload();
    const removed = await request('added abc');
    t.equal(removed.code, 65, 'a type removed by a reload is refused (UNKNOWN_TYPE)');
    const r = await load;
    const lines = r.stdout.toString().trim().split('\n');
    const results = lines.filter((l) => /^\d+ \d+$/.test(l)).map((l) => l.split(' ').map(Number));
    const ok = results.reduce((n, [o]) => n + o!, 0);
    const bad = results.reduce((n, [, b]) => n + b!, 0);
    t.equal(results.length, 10, 'every loop reported');
    t.ok(results.every(([o]) => o! >= 1), `every loop had requests served during the reloads (${ok} in all)`);
    t.equal(bad, 0, `no request failed${bad ? `: ${lines.filter((l) => !/^\d+ \d+$/.test(l)).slice(0, 5).join('; ')}` : ''}`);
    t.equal(await restarts(), before, 'no daemon was restarted');
  });
}
