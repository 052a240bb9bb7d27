/**
 * The operator's life with a running suite, under the real systemd, mostly under request
 * load (test/chaos/lib/load.ts, run inside): configuration reload (valid and invalid), scaling the number of
 * secondaries, `dispatchctl status` in every format, STATUS= lines, structured journal
 * fields, and the man pages and bash completion the package installs.
 */
import t from 'tap';
import { LEASE_TOKEN_HEX } from '../../daemons/common/lease-token.js';
import { TICK_MS } from '../../daemons/common/timing.js';
import { describeLoad, startLoadInside, stopLoadInside, tools } from './lib/inside.js';
import { describe } from '../helpers/index.js';
import { DAEMONS, installedSuite, journalNow, mainPids, until } from './lib/suite.js';

/** A lease token as the journal's LEASE= field carries it (docs/PROTOCOL.md §2.2). */
const LEASE_RE = new RegExp(`^[0-9a-f]{${LEASE_TOKEN_HEX}}$`);

const sb = await installedSuite(t, import.meta.url);
/** Steady echo load from 4 clients, 10 ms between a client's requests, until stopped. */
const LOAD = { clients: 4, pauseMs: 10, types: 'echo', durationMs: 300_000, timeoutMs: 30_000, readyAfter: 20 };

interface Status {
  daemons: Array<{ name: string; pid: number; state: string; requests: number; capacity: number; latency_sum_us: number }>;
}

if (sb) {
  const target = await tools(sb);
  const CONF = '/etc/dispatchd/dispatchd.conf';
  const status = async (): Promise<Status> => JSON.parse(await sb.out('dispatchctl status --json')) as Status;
  const pids = (units = DAEMONS) => mainPids(sb, units);
  const now = () => journalNow(sb);
  /** The sandbox's clock in µs since the epoch, as the journal's __REALTIME_TIMESTAMP. */
  const nowUs = async () => Number((await sb.out('date +%s%6N')).trim());
  /** When the invalid-file test logged its refusals on purpose (µs, __REALTIME_TIMESTAMP). */
  let refusals: { from: number; to: number } | undefined;
  const lineOf = async (pattern: string) => Number((await sb.out(`grep -n '${pattern}' ${CONF} | cut -d: -f1`)).trim());
  /** The file as the package shipped it: each test starts from it, not from what an earlier test left. */
  const SHIPPED = '/root/dispatchd.conf.shipped';
  await sb.out(`cp -p ${CONF} ${SHIPPED}`);
  const secondariesCapacity = async () => (await status()).daemons.filter((d) => d.name.startsWith('secondary-')).map((d) => d.capacity);
  /** Writes the shipped file with `sedScript` applied, reloads the suite, and waits until every secondary publishes `capacity`. */
  const configure = async (sedScript: string, capacity: number) => {
    await sb.out(`cp ${SHIPPED} ${CONF}${sedScript ? ` && sed -i '${sedScript}' ${CONF}` : ''} && systemctl reload dispatchd.target`);
    await until(`every secondary to publish capacity ${capacity}`, 10_000, async () => ((await secondariesCapacity()).every((c) => c === capacity) ? true : undefined));
    await until('the reload jobs to end', 10_000, async () => ((await sb.out('systemctl list-jobs --no-legend')).trim() === '' ? true : undefined));
  };

  t.test('systemctl reload dispatchd.target applies a changed file to every daemon, under load, without a restart', async (t) => {
    const running = await startLoadInside(target, LOAD);
    t.teardown(running.stop); // a failed assertion must not leave it running
    await configure('', 32);
    const before = await pids();
    const since = await now();
    await sb.out(`sed -i 's/^#max_leases = 32/max_leases = 7/; s/^#queue_max = 1024/queue_max = 500/' ${CONF}`);
    const r = await sb.exec(['systemctl', 'reload', 'dispatchd.target']);
    t.equal(r.code, 0, describe('systemctl reload dispatchd.target', r));
    await until('every secondary to publish capacity 7', 10_000, async () => {
      const s = await status();
      return s.daemons.filter((d) => d.name.startsWith('secondary-')).every((d) => d.capacity === 7) ? true : undefined;
    });
    t.pass('secondary-1 and secondary-2 hold at most 7 leases now (the scoreboard says so)');
    t.same(await pids(), before, 'same processes: reloaded, not restarted');
    for (const unit of ['dispatchd-main', 'dispatchd-secondary@1', 'dispatchd-secondary@2', 'dispatchd-watchdog']) {
      const j = await sb.out(`journalctl --no-pager -q -u ${unit} --since '${since}' -g 'reloaded configuration'`);
      t.match(j, /applied (main\.queue_max, )?secondary\.max_leases|applied .*queue_max/, `${unit} logged what it applied`);
    }
    const load = await stopLoadInside(running);
    t.ok(load.succeeded > 20, `requests kept flowing (${load.succeeded})`);
    t.equal(load.failed, 0, `no request failed: ${describeLoad(load)}`);
  });

  t.test('an invalid file is refused with its line and key, and the suite keeps serving the running configuration', async (t) => {
    // Its own running configuration: 9 leases per secondary.
    await configure('s/^#max_leases = 32/max_leases = 9/', 9);
    const running = await startLoadInside(target, LOAD);
    t.teardown(running.stop); // a failed assertion must not leave it running
    const before = await pids();
    const since = await now();
    const from = await nowUs();
    await sb.out(`sed -i 's/^max_leases = 9/max_leases = "lots"/' ${CONF}`);
    const line = await lineOf('^max_leases = "lots"');
    t.ok(line > 0, `the bad value is on line ${line}`);

    // One unit: systemctl waits for its reload and reports the failure.
    const one = await sb.exec(['systemctl', 'reload', 'dispatchd-main.service']);
    t.not(one.code, 0, 'systemctl reload dispatchd-main.service fails');
    // The whole suite: the target's own job succeeds; each daemon refuses on its own.
    await sb.exec(['systemctl', 'reload', 'dispatchd.target']);
    const check = await sb.exec(['dispatchctl', 'check-config']);
    t.equal(check.code, 78, 'dispatchctl check-config exits 78 (EX_CONFIG)');
    t.match(check.stderr, new RegExp(`line ${line}: key 'secondary\\.max_leases'`), `check-config names line ${line} and the key`);
    await until('each daemon to refuse the file in the journal', 10_000, async () => {
      const errs = await Promise.all(['dispatchd-main', 'dispatchd-secondary@1', 'dispatchd-secondary@2', 'dispatchd-watchdog'].map((u) => sb.out(`journalctl --no-pager -q -u ${u} --since '${since}' -p err`)));
      return errs.every((e) => new RegExp(`line ${line}: key 'secondary\\.max_leases'`).test(e)) ? true : undefined;
    });
    t.pass(`journalctl -u UNIT -p err names line ${line} and secondary.max_leases for every daemon`);

    // SIGHUP straight to the daemon (the file changed after the check): it refuses too.
    await sb.out('systemctl kill -s HUP --kill-who=main dispatchd-main.service');
    await until('main to refuse the file on SIGHUP', 10_000, async () => {
      const j = await sb.out(`journalctl --no-pager -q -u dispatchd-main --since '${since}' -p err -g 'failed to reload configuration'`);
      return /keeping the running configuration/.test(j) && new RegExp(`line ${line}`).test(j) ? j : undefined;
    });
    t.pass('on SIGHUP the daemon logs the line and key and keeps its running configuration');

    t.same(await pids(), before, 'nothing restarted or stopped');
    for (const u of DAEMONS) t.equal((await sb.show(u, 'ActiveState')).ActiveState, 'active', `${u} is active`);
    const s = await status();
    t.same(s.daemons.filter((d) => d.name.startsWith('secondary-')).map((d) => d.capacity), [9, 9], 'the running configuration (9) stays');
    const load = await stopLoadInside(running);
    t.equal(load.failed, 0, `no request failed: ${describeLoad(load)}`);
    await configure('', 32); // the shipped file again, for whatever runs next
    refusals = { from, to: await nowUs() };
  });

  t.test('dispatchctl scale: main and the watchdog notice new and removed secondaries, no restart, no failed request', async (t) => {
    const since = await now();
    const mainPid = (await sb.show('dispatchd-main.service', 'MainPID')).MainPID;
    const watchdogPid = (await sb.show('dispatchd-watchdog.service', 'MainPID')).MainPID;
    const running = await startLoadInside(target, LOAD);
    t.teardown(running.stop); // a failed assertion must not leave it running
    t.equal((await sb.out('dispatchctl scale')).trim(), 'secondaries: 2 enabled (1 2), running: 1 2', 'dispatchctl scale shows 2');

    const up = await sb.exec(['dispatchctl', 'scale', '4']);
    t.equal(up.code, 0, describe('dispatchctl scale 4', up));
    t.equal(up.stdout.toString().trim(), 'secondaries: 4 enabled (1 2 3 4), running: 1 2 3 4');
    t.equal((await sb.out('systemctl is-enabled dispatchd-secondary@4.service dispatchd-secondary@4.socket dispatchd-secondary-mailbox@4.socket')).trim().split('\n').join(' '), 'enabled enabled enabled', 'instance 4 and its sockets are enabled');
    await until('main to send work to secondary-3 and secondary-4', 20_000, async () => {
      const s = await status();
      return ['secondary-3', 'secondary-4'].every((n) => (s.daemons.find((d) => d.name === n)?.requests ?? 0) > 0) ? true : undefined;
    });
    t.pass('secondary-3 and secondary-4 serve requests');
    await until("main's STATUS= to count 4 secondaries", 5_000, async () => (/4 secondaries alive/.test((await sb.show('dispatchd-main.service', 'StatusText')).StatusText ?? '') ? true : undefined));
    await until("the watchdog's STATUS= to probe secondary-4", 5_000, async () => (/secondary-4/.test((await sb.show('dispatchd-watchdog.service', 'StatusText')).StatusText ?? '') ? true : undefined));
    t.pass("main's and the watchdog's STATUS= lines name the new secondaries");

    const down = await sb.exec(['dispatchctl', 'scale', '1']);
    t.equal(down.code, 0, describe('dispatchctl scale 1', down));
    t.equal(down.stdout.toString().trim(), 'secondaries: 1 enabled (1), running: 1');
    const s = await status();
    const states = s.daemons.filter((d) => d.name.startsWith('secondary-')).map((d) => `${d.name} ${d.state.replace(/^(busy|full)$/, 'ready')}`);
    t.same(states, ['secondary-1 ready', 'secondary-2 stopped', 'secondary-3 stopped', 'secondary-4 stopped'], 'the scoreboard shows the removed ones stopped');
    const left = (await sb.out('ls /run/dispatchd | tr "\\n" " "')).trim();
    // On a failure, systemd's view of the secondaries' units says which one came back and how.
    const units = left === 'main.fifo main.sock secondary-1.fifo secondary-1.sock watchdog.fifo' ? '' : `; units: ${(await sb.out("systemctl list-units --all --plain --no-legend 'dispatchd-secondary*'")).trim().replace(/\s*\n\s*/g, ' | ')}`;
    t.equal(left, 'main.fifo main.sock secondary-1.fifo secondary-1.sock watchdog.fifo', `their sockets and FIFOs are gone${units}`);
    await until("main's STATUS= to count 1 secondary", 5_000, async () => (/ 1 secondaries alive/.test((await sb.show('dispatchd-main.service', 'StatusText')).StatusText ?? '') ? true : undefined));
    t.pass("main's STATUS= counts 1 secondary");
    const before = (await status()).daemons.find((d) => d.name === 'secondary-1')!.requests;
    await until('secondary-1 to serve on alone', 10_000, async () => ((await status()).daemons.find((d) => d.name === 'secondary-1')!.requests > before + 10 ? true : undefined));
    const load = await stopLoadInside(running);
    t.equal(load.failed, 0, `no request failed while scaling 2 -> 4 -> 1: ${describeLoad(load)}`);
    t.equal((await sb.show('dispatchd-main.service', 'MainPID')).MainPID, mainPid, 'main was not restarted');
    t.equal((await sb.show('dispatchd-watchdog.service', 'MainPID')).MainPID, watchdogPid, 'the watchdog was not restarted');
    t.equal((await sb.out(`journalctl --no-pager -q -u dispatchd-watchdog --since '${since}' -p warning`)).trim(), '', 'the watchdog restarted nothing and warned of nothing');

    // The number persists: a restart of the suite (or a reboot) brings back 1 secondary.
    await sb.out('systemctl restart dispatchd.target');
    t.equal((await sb.out('dispatchctl scale')).trim(), 'secondaries: 1 enabled (1), running: 1', 'after systemctl restart dispatchd.target: still 1');
    t.equal((await sb.exec(['dispatchctl', 'scale', '0'])).code, 64, 'scale 0 is a usage error');
    t.equal((await sb.out('dispatchctl scale 2')).trim(), 'secondaries: 2 enabled (1 2), running: 1 2', 'back to 2');
  });

  t.test('dispatchctl status: table, JSON, OpenMetrics, --watch on a pipe and on a terminal', async (t) => {
    const mainLeases = async () => (await status()).daemons.find((d) => d.name === 'main')!.requests;
    const granted = await mainLeases();
    for (let i = 0; i < 5; i++) await sb.out(`dispatchctl request echo status-${i}`);
    // Main publishes its counters on its tick (TICK_MS): they lag by up to one.
    await until('main to publish the 5 leases', 3 * TICK_MS, async () => ((await mainLeases()) >= granted + 5 ? true : undefined));
    const table = await sb.out('dispatchctl status');
    t.match(table.split('\n')[0], /^NAME\s+PID\s+STATE\s+ACTIVE\s+REQUESTS\s+FAILED\s+LATENCY\s+HEARTBEAT\s+RESTARTS$/, 'the table header');
    t.match(table, /^main\s+\d+\s+ready\s+\d+\s+\d+\s+\d+\s+[\d.]+m?s\/[\d.]+m?s\s/m, 'main with its lease latency mean/max');
    const s = await status();
    t.ok(s.daemons.find((d) => d.name === 'main')!.latency_sum_us > 0, 'main published its lease latencies on the scoreboard');

    const om = await sb.out('dispatchctl status --format openmetrics');
    t.ok(om.endsWith('# EOF\n'), 'OpenMetrics ends with # EOF');
    for (const family of ['dispatchd_requests_total{daemon="main"}', 'dispatchd_daemon_state{daemon="secondary-1",state="ready"}', 'dispatchd_restarts_total{daemon="watchdog"}', 'dispatchd_lease_latency_seconds_total{daemon="main"}', 'dispatchd_request_duration_seconds_total{daemon="secondary-1"}', 'dispatchd_leases_capacity{daemon="secondary-2"}']) {
      t.match(om, `${family} `, family);
    }
    const parser = await sb.sh("/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser'");
    if (parser.code === 0) {
      const parsed = await sb.sh("dispatchctl status --format openmetrics | /usr/bin/python3 -c 'import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nprint(len(list(p(sys.stdin.read()))))'");
      t.equal(parsed.code, 0, describe('the OpenMetrics reference parser accepts it', parsed));
    } else {
      t.comment('python3-prometheus-client not installed: the reference parser check is in test/unit/client/metrics.test.ts');
    }

    const piped = await sb.sh('dispatchctl status --json --watch --interval 200 --count 3 | cat');
    const lines = piped.stdout.toString().trim().split('\n');
    t.equal(lines.length, 3, '--watch on a pipe: one snapshot per interval (3 JSON lines)');
    t.ok(lines.every((l) => Array.isArray((JSON.parse(l) as Status).daemons)), 'each one a whole report');
    t.notMatch(piped.stdout.toString(), /\u001b\[/, 'no escape sequence on a pipe');

    // A terminal: script(1) gives the command a pseudo-terminal.
    const tty = await sb.sh("script -qec 'dispatchctl status --watch --interval 200 --count 3' /dev/null");
    const screen = tty.stdout.toString();
    t.equal(tty.code, 0, describe('--watch on a terminal', tty));
    t.match(screen, /\u001b\[2K/, '--watch on a terminal erases the previous snapshot (ANSI)');
    t.ok(screen.split('NAME').length - 1 >= 3, 'and draws 3 snapshots');
  });

  t.test('STATUS= in systemctl status shows live counters', async (t) => {
    const count = async (unit: string, re: RegExp) => Number(re.exec((await sb.show(unit, 'StatusText')).StatusText ?? '')?.[1] ?? NaN);
    const main0 = await count('dispatchd-main.service', /(\d+) leases granted/);
    const sec0 = (await count('dispatchd-secondary@1.service', /(\d+) served/)) + (await count('dispatchd-secondary@2.service', /(\d+) served/));
    for (let i = 0; i < 6; i++) await sb.out(`dispatchctl request sha256 counters-${i}`);
    await until('the counters in STATUS= to move', 5_000, async () => ((await count('dispatchd-main.service', /(\d+) leases granted/)) >= main0 + 6 ? true : undefined));
    // Each daemon refreshes its STATUS= on its own tick (1 s): wait for the secondaries' too.
    let sec1 = sec0;
    await until('the secondaries\' counters in STATUS= to move', 5_000, async () => {
      sec1 = (await count('dispatchd-secondary@1.service', /(\d+) served/)) + (await count('dispatchd-secondary@2.service', /(\d+) served/));
      return sec1 >= sec0 + 6 ? true : undefined;
    }).catch(() => undefined);
    t.ok(sec1 >= sec0 + 6, `the secondaries' STATUS= counts served requests (${sec0} -> ${sec1})`);
    await until("main's STATUS= to count the 2 secondaries", 5_000, async () => (/ 2 secondaries alive/.test((await sb.show('dispatchd-main.service', 'StatusText')).StatusText ?? '') ? true : undefined));
    const shown = await sb.out('systemctl status --no-pager dispatchd-main.service || true');
    t.match(shown, /Status: "ready: \d+ leases granted, \d+ refused, \d+ in progress, \d+ queued; 2 secondaries alive"/, 'systemctl status shows the line');
  });

  t.test('journal entries carry structured fields, through the native journal transport', async (t) => {
    const r = await sb.exec(['dispatchctl', 'request', '--deadline', '100', 'sleep', '2000']);
    t.equal(r.code, 124, 'a sleep past its deadline is cut off (exit 124)');
    const entries = await until('the cut-off in the journal', 5_000, async () => {
      const out = await sb.out("journalctl --no-pager -q -o json -u 'dispatchd-secondary@*' -g 'cut off'");
      const list = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
      return list.length ? list : undefined;
    });
    const e = entries[entries.length - 1]!;
    t.equal(e._TRANSPORT, 'journal', 'sent natively (sd_journal_send), not as a stdout line');
    t.equal(e.SYSLOG_IDENTIFIER, 'dispatchd-secondary');
    t.equal(e.PRIORITY, '4', 'warning');
    t.equal(e.TYPE, 'sleep', 'TYPE= the request type');
    t.match(e.LEASE, LEASE_RE, 'LEASE= the lease');
    t.match(e.SECONDARY, /^secondary-[12]$/, 'SECONDARY= the secondary');
    t.equal(e.CODE, 'DEADLINE_EXCEEDED', 'CODE= the stable error code');
    t.equal(e.DEADLINE_MS, '100', 'DEADLINE_MS=');
    t.match(e._SYSTEMD_UNIT, /^dispatchd-secondary@[12]\.service$/, 'credited to its unit');

    const started = JSON.parse((await sb.out("journalctl --no-pager -q -o json -u dispatchd-main -g 'started, dispatchd' -n 1")).trim()) as Record<string, string>;
    t.equal(started._TRANSPORT, 'journal', 'main logs natively too');
    t.equal(started.UNIT, 'dispatchd-main.service', 'UNIT= the daemon\'s unit');
    t.match(started.VERSION, /^\d+\.\d+\.\d+/, 'VERSION= the running version');
    t.equal(started._PID, (await sb.show('dispatchd-main.service', 'MainPID')).MainPID, 'from the running main process');
  });

  t.test('man pages and bash completion are installed', async (t) => {
    t.equal((await sb.out('man -w dispatchd')).trim(), '/usr/share/man/man8/dispatchd.8.gz', 'dispatchd(8)');
    t.equal((await sb.out('man -w dispatchctl')).trim(), '/usr/share/man/man1/dispatchctl.1.gz', 'dispatchctl(1)');
    const page = await sb.out('MANWIDTH=100 man -P cat dispatchctl 2>/dev/null');
    for (const word of ['scale', 'check-config', '--watch', 'openmetrics', 'EXIT STATUS']) t.match(page, word, `dispatchctl(1) documents ${word}`);
    const man8 = await sb.out('MANWIDTH=100 man -P cat 8 dispatchd 2>/dev/null');
    for (const word of ['UNITS', 'FILES', 'SIGNALS', 'EXIT STATUS', 'SIGHUP', 'dispatchd.target', 'systemctl reload dispatchd.target']) t.match(man8, word, `dispatchd(8) documents ${word}`);
    const complete = async (words: string) =>
      (await sb.out(`source /usr/share/bash-completion/completions/dispatchctl; COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _dispatchctl_yargs_completions; echo "\${COMPREPLY[@]}"`)).trim();
    t.match(await complete('dispatchctl ""'), /request.*status.*scale.*check-config/, 'commands complete');
    t.match(await complete('dispatchctl status --f'), /--format/, 'options complete');
    t.equal(await complete('dispatchctl request ""'), 'echo sha256 sleep', 'request types complete');
    t.equal(await complete('dispatchctl request s'), 'sha256 sleep', 'from their first letters');
  });

  t.test('no unexpected errors in the journal', async (t) => {
    // The invalid-file test logged its refusals on purpose, within its own time: those, and
    // nothing else, may be errors.
    const entries = (await sb.out("journalctl --no-pager -q -u 'dispatchd*' -p err -o json"))
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { __REALTIME_TIMESTAMP: string; MESSAGE: string });
    const expected = (e: { __REALTIME_TIMESTAMP: string; MESSAGE: string }) =>
      refusals !== undefined &&
      Number(e.__REALTIME_TIMESTAMP) >= refusals.from &&
      Number(e.__REALTIME_TIMESTAMP) <= refusals.to &&
      /failed to reload configuration|configuration refused|Reload failed|Failed to reload|Control process exited/.test(e.MESSAGE);
    t.same(entries.filter((e) => !expected(e)).map((e) => e.MESSAGE), [], 'no other error');
  });
}
