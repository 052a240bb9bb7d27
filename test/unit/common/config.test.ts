import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { changedKeys, ConfigSchema, defaultConfig, DEFAULT_CONFIG_PATH, loadConfig, mergeReload, parseConfig, type Config } from '../../../daemons/common/config.js';
import { checkPaths, loadPaths, MAX_CONFIG_BYTES } from '../../../daemons/common/paths-section.js';
import { checkPayloadLimit, DEFAULT_MAX_PAYLOAD_BYTES, loadPayloadLimit, MIN_MAX_PAYLOAD_BYTES } from '../../../daemons/common/payload-limit.js';
import { lineOf } from '../../../daemons/common/toml-lines.js';
import type { DispatchError } from '../../../daemons/common/errors.js';
import { MAX_SECONDARIES } from '../../../daemons/common/topology.js';

const SHIPPED = fileURLToPath(new URL('../../../packaging/dispatchd.conf', import.meta.url));
const FILE = '/etc/dispatchd/dispatchd.conf';

const DEFAULTS: Config = {
  paths: { runtime_dir: '/run/dispatchd', scoreboard: '/dev/shm/dispatchd.scoreboard' },
  main: { reserve_timeout_ms: 500, lease_ttl_ms: 3000, queue_timeout_ms: 2000, queue_max: 1024, client_idle_timeout_ms: 5000, heartbeat_stale_ms: 3000 },
  secondary: { max_leases: 32, request_deadline_ms: 30_000, max_payload_bytes: 64 * 1024 * 1024, client_idle_timeout_ms: 5000, serve: ['*'], instance: {} },
  types: { dirs: ['/usr/share/dispatchd/types.d', '/etc/dispatchd/types.d'] },
  watchdog: { probe_interval_ms: 300, max_missed: 3 },
};

/** The error parseConfig throws for `text`. */
function failure(text: string, where = FILE): DispatchError {
  try {
    parseConfig(text, where);
  } catch (e) {
    return e as DispatchError;
  }
  throw new Error(`accepted: ${text}`);
}

t.test('defaults', async (t) => {
  t.same(defaultConfig(), DEFAULTS, 'the documented defaults (docs/PROTOCOL.md §5)');
  t.same(parseConfig('', FILE), DEFAULTS, 'an empty file means the defaults');
  t.same(parseConfig('# only a comment\n\n', FILE), DEFAULTS);
  t.same(parseConfig('[main]\n[secondary]\n[watchdog]\n[paths]\n', FILE), DEFAULTS, 'empty sections mean the defaults');
  t.equal(DEFAULT_CONFIG_PATH, '/etc/dispatchd/dispatchd.conf');
});

t.test('each section, every key', async (t) => {
  const text = `
[paths]
runtime_dir = "/run/other"
scoreboard = "/dev/shm/other.scoreboard"

[main]
reserve_timeout_ms = 10
lease_ttl_ms = 100
queue_timeout_ms = 0
queue_max = 0
client_idle_timeout_ms = 100
heartbeat_stale_ms = 2000

[secondary]
max_leases = 1
request_deadline_ms = 10
max_payload_bytes = 16777216
client_idle_timeout_ms = 3600000
serve = ["echo", "upper"]

[secondary.instance.3]
serve = ["heavy"]

[types]
dirs = ["/etc/dispatchd/types.d"]

[watchdog]
probe_interval_ms = 1500
max_missed = 100
`;
  t.same(parseConfig(text, FILE), {
    paths: { runtime_dir: '/run/other', scoreboard: '/dev/shm/other.scoreboard' },
    main: { reserve_timeout_ms: 10, lease_ttl_ms: 100, queue_timeout_ms: 0, queue_max: 0, client_idle_timeout_ms: 100, heartbeat_stale_ms: 2000 },
    secondary: { max_leases: 1, request_deadline_ms: 10, max_payload_bytes: 16 * 1024 * 1024, client_idle_timeout_ms: 3_600_000, serve: ['echo', 'upper'], instance: { '3': { serve: ['heavy'] } } },
    types: { dirs: ['/etc/dispatchd/types.d'] },
    watchdog: { probe_interval_ms: 1500, max_missed: 100 },
  }, 'every key set, at the bounds of its range');
  const partial = parseConfig('[watchdog]\nmax_missed = 5\n', FILE);
  t.same(partial, { ...DEFAULTS, watchdog: { ...DEFAULTS.watchdog, max_missed: 5 } }, 'one key set, the rest default');
  t.same(parseConfig('main = { queue_max = 7 }\n', FILE).main.queue_max, 7, 'an inline table');
  t.same(parseConfig('main.queue_max = 8\n', FILE).main.queue_max, 8, 'a dotted key');
  t.same(parseConfig('[main]\nqueue_max = 1_000\n', FILE).main.queue_max, 1000, 'TOML number separators');
});

t.test('unknown key, wrong type, out of range: CONFIG_INVALID naming the file, the line and the key', async (t) => {
  const cases: Array<[string, string, number, string]> = [
    ['unknown key', '[main]\nqueue_max = 3\nqueue_size = 10\n', 3, 'main.queue_size'],
    ['unknown section', '# comment\n[mian]\nqueue_max = 3\n', 2, 'mian'],
    ['unknown top-level key', 'verbose = true\n', 1, 'verbose'],
    ['wrong type: string for a number', '[main]\n\nqueue_max = "ten"\n', 3, 'main.queue_max'],
    ['wrong type: float for an integer', '[watchdog]\nprobe_interval_ms = 2.5\n', 2, 'watchdog.probe_interval_ms'],
    ['wrong type: number for a path', '[paths]\nscoreboard = 5\n', 2, 'paths.scoreboard'],
    ['relative path', '[paths]\nruntime_dir = "run/dispatchd"\n', 2, 'paths.runtime_dir'],
    ['below range', '[watchdog]\nmax_missed = 0\n', 2, 'watchdog.max_missed'],
    ['above range', '[watchdog]\nprobe_interval_ms = 1501\n', 2, 'watchdog.probe_interval_ms'],
    ['negative', '[main]\nqueue_timeout_ms = -1\n', 2, 'main.queue_timeout_ms'],
    ['payload under 16 MiB', '[paths]\n[secondary]\nmax_leases = 4\nmax_payload_bytes = 1048576\n', 4, 'secondary.max_payload_bytes'],
    ['payload over 1 GiB', '[secondary]\nmax_payload_bytes = 1073741825\n', 2, 'secondary.max_payload_bytes'],
    ['a section that is not a table', 'main = 5\n', 1, 'main'],
    ['after its commented-out default', '[main]\n#queue_max = 1024\nqueue_max = -4\n', 3, 'main.queue_max'],
    ['indented key', '[main]\n   lease_ttl_ms = 99\n', 2, 'main.lease_ttl_ms'],
    ['same key in two sections', '[secondary]\nclient_idle_timeout_ms = 5000\n[main]\nclient_idle_timeout_ms = 50\n', 4, 'main.client_idle_timeout_ms'],
  ];
  for (const [what, text, line, key] of cases) {
    const err = failure(text, '/tmp/test.conf');
    t.equal(err.code, 'CONFIG_INVALID', `${what}: CONFIG_INVALID`);
    t.match(err.message, "'/tmp/test.conf'", `${what}: names the file`);
    t.match(err.message, new RegExp(`\\bline ${line}\\b`), `${what}: names line ${line} (${err.message})`);
    t.match(err.message, `'${key}'`, `${what}: names the key ${key}`);
    t.equal(err.fields.key, key, `${what}: the key as a field`);
    t.equal(err.fields.config, '/tmp/test.conf');
  }
});

t.test('[secondary.instance.N]: N within the suite\'s one bound (topology MAX_SECONDARIES), the reason named', async (t) => {
  const serve = (n: string) => `[secondary.instance.${n}]\nserve = ["echo"]\n`;
  t.same(parseConfig(serve(String(MAX_SECONDARIES)), FILE).secondary.instance, { [MAX_SECONDARIES]: { serve: ['echo'] } }, 'the largest instance');
  for (const bad of [String(MAX_SECONDARIES + 1), '0', '01', 'x']) {
    const err = failure(serve(bad));
    t.equal(err.code, 'CONFIG_INVALID', `instance ${bad}`);
    t.equal(err.fields.key, `secondary.instance.${bad}`, `instance ${bad}: the key`);
    t.match(err.message, `an instance is a whole number 1..${MAX_SECONDARIES}`, `instance ${bad}: why`);
  }
  t.same(parseConfig('[secondary]\nserve = ["*", "a-b9"]\n', FILE).secondary.serve, ['*', 'a-b9'], 'serve: "*" and a type name');
  t.match(failure('[secondary]\nserve = ["Echo"]\n').message, `key 'secondary.serve.0': a type name or "*"`, 'serve: not a type name');
});

t.test('a bad value written as a dotted key or in an inline table still names its line', async (t) => {
  const cases: Array<[string, string, number]> = [
    ['dotted key', '# dispatchd\nmain.queue_max = -1\n', 2],
    ['inline table', '\n\nmain = { queue_max = -1 }\n', 3],
    ['quoted key', '[main]\n"queue_max" = -1\n', 2],
  ];
  const subTable = failure('# dispatchd\n[main.extra]\nx = 1\n');
  t.match(subTable.message, "unknown key 'main.extra'", 'a sub-table: names the key');
  t.match(subTable.message, /\bline 2\b/, 'a sub-table: names line 2');
  for (const [what, text, line] of cases) {
    const err = failure(text);
    t.equal(err.code, 'CONFIG_INVALID', what);
    t.match(err.message, "'main.queue_max'", `${what}: names the key`);
    t.match(err.message, new RegExp(`\\bline ${line}\\b`), `${what}: names line ${line}`);
  }
});

t.test('a TOML syntax error names the line', async (t) => {
  const cases: Array<[string, string, number]> = [
    ['missing value', '[main]\nqueue_max =\n', 2],
    ['two equals', '[main]\nlease_ttl_ms = 100\nqueue_max = = 3\n', 3],
    ['unclosed section', '\n\n\n[main\nqueue_max = 3\n', 4],
    ['unquoted string', '[paths]\nruntime_dir = /run/x\n', 2],
    ['duplicate key', '[main]\nqueue_max = 3\nqueue_max = 4\n', 3],
  ];
  for (const [what, text, line] of cases) {
    const err = failure(text, '/etc/x.conf');
    t.equal(err.code, 'CONFIG_INVALID', what);
    t.match(err.message, "'/etc/x.conf'", `${what}: names the file`);
    t.match(err.message, new RegExp(`\\bline ${line}\\b`), `${what}: names line ${line} (${err.message})`);
    t.notMatch(err.message, /\n/, `${what}: one line of message`);
  }
});

t.test('lineOf', async (t) => {
  const text = '# c\n[main]\nqueue_max = 1\n[ secondary ]\nmax_leases=2\n';
  t.equal(lineOf(text, ['main', 'queue_max']), 3);
  t.equal(lineOf(text, ['secondary', 'max_leases']), 5, 'spaces in the header, none around =');
  t.equal(lineOf(text, ['secondary']), 4, 'a section');
  t.equal(lineOf(text, ['watchdog', 'max_missed']), undefined);
});

t.test('loadConfig: files', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const missing = path.join(dir, 'missing.conf');
  t.same(loadConfig(missing), DEFAULTS, 'a missing file at the default location means the defaults');
  t.same(loadConfig(missing, false), DEFAULTS);
  t.throws(() => loadConfig(missing, true), { code: 'CONFIG_UNREADABLE', message: new RegExp(`failed to read configuration '${missing}'`) }, 'a missing file named explicitly');
  t.throws(() => loadConfig(dir, false), { code: 'CONFIG_UNREADABLE' }, 'a directory is unreadable, not "missing"');

  const good = path.join(dir, 'good.conf');
  fs.writeFileSync(good, '[secondary]\nmax_leases = 7\n');
  t.equal(loadConfig(good, true).secondary.max_leases, 7);
  const bad = path.join(dir, 'bad.conf');
  fs.writeFileSync(bad, '[secondary]\nmax_leases = 0\n');
  t.throws(() => loadConfig(bad, true), { code: 'CONFIG_INVALID', message: new RegExp(`'${bad}' line 2: key 'secondary.max_leases'`) });
});

t.test('the shipped packaging/dispatchd.conf parses and equals the defaults', async (t) => {
  const text = fs.readFileSync(SHIPPED, 'utf8');
  t.same(loadConfig(SHIPPED, true), DEFAULTS, 'as shipped (all comments)');
  // Its commented-out lines show the defaults: uncommented, they must still mean the defaults.
  const uncommented = text.replace(/^#([a-z_]+ = .*)$/gm, '$1');
  t.not(uncommented, text, 'there are commented-out settings');
  const keys = [...uncommented.matchAll(/^([a-z_]+) = /gm)].map((m) => m[1]);
  const documented = Object.values(DEFAULTS).flatMap((s) => Object.keys(s));
  t.same([...keys].sort(), [...documented].sort(), 'every key is shown once per section, and no other');
  t.same(parseConfig(uncommented, SHIPPED), DEFAULTS, 'every value shown is the real default');
});

t.test('changedKeys', async (t) => {
  const a = defaultConfig();
  t.same(changedKeys(a, defaultConfig()), [], 'equal configurations');
  const b = parseConfig('[main]\nqueue_max = 5\n[watchdog]\nmax_missed = 9\n[paths]\nruntime_dir = "/run/x"\n', FILE);
  t.same(changedKeys(a, b).sort(), ['main.queue_max', 'paths.runtime_dir', 'watchdog.max_missed']);
});

t.test('mergeReload: everything but paths is taken; paths need a restart', async (t) => {
  const running = defaultConfig();
  const next = parseConfig('[main]\nlease_ttl_ms = 9000\n[paths]\nscoreboard = "/dev/shm/other"\n', FILE);
  const { config, outcome } = mergeReload(running, next);
  t.equal(config.main.lease_ttl_ms, 9000, 'a new timeout is live');
  t.same(config.paths, running.paths, 'paths stay as they are');
  t.same(outcome, { applied: ['main.lease_ttl_ms'], needRestart: ['paths.scoreboard'] });
  t.equal(running.main.lease_ttl_ms, 3000, 'the running configuration is not modified');
  t.same(mergeReload(running, defaultConfig()).outcome, { applied: [], needRestart: [] }, 'nothing changed');
});

t.test("loadPaths (the keeper's): [paths] alone, the defaults when the file or [paths] is unreadable", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-paths-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'c.conf');
  fs.writeFileSync(file, '[paths]\nscoreboard = "/dev/shm/x"\n[secondary]\nrequest_deadline_ms = -5\n');
  t.same(loadPaths(file, true), { paths: { runtime_dir: '/run/dispatchd', scoreboard: '/dev/shm/x' } }, 'the scoreboard path is read; other sections are the daemons\' to refuse');
  t.throws(() => loadConfig(file, true), /line 4: key 'secondary.request_deadline_ms'/, '(as they do)');
  fs.writeFileSync(file, 'this is = = not toml\n');
  const broken = loadPaths(file, true);
  t.equal(broken.paths.scoreboard, '/dev/shm/dispatchd.scoreboard', 'defaults when the file does not parse');
  t.match(broken.problem, /failed to parse configuration '.*c\.conf' line 1/);
  fs.writeFileSync(file, '[paths]\nscoreboard = 5\n');
  const bad = loadPaths(file, true);
  t.equal(bad.paths.scoreboard, '/dev/shm/dispatchd.scoreboard', 'defaults when [paths] itself is bad');
  t.match(bad.problem, /key 'paths.scoreboard': an absolute path/);
  fs.writeFileSync(file, '[paths]\nscorebord = "/x"\n');
  t.match(loadPaths(file, true).problem, /unknown key 'paths.scorebord'/);
  fs.writeFileSync(file, '[paths]\nruntime_dir = "/run/x"\n');
  t.same(loadPaths(file, true), { paths: { runtime_dir: '/run/x', scoreboard: '/dev/shm/dispatchd.scoreboard' } }, 'a good file: no problem');
  t.same(loadPaths(path.join(dir, 'absent.conf'), false), { paths: { runtime_dir: '/run/dispatchd', scoreboard: '/dev/shm/dispatchd.scoreboard' } }, 'a missing default file: the defaults');
  t.match(loadPaths(path.join(dir, 'absent.conf'), true).problem, /failed to read configuration/, 'a missing file named with --config: said so');
});

t.test('a configuration file is read no further than MAX_CONFIG_BYTES: a wrong path is refused, not read into memory', async (t) => {
  t.throws(() => loadConfig('/dev/zero', true), { code: 'CONFIG_INVALID', message: `failed to read configuration '/dev/zero': it is larger than ${MAX_CONFIG_BYTES} bytes; is it the configuration file?` });
  t.throws(() => loadPayloadLimit('/dev/zero', true), { code: 'CONFIG_INVALID' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-big-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'd.conf');
  fs.writeFileSync(file, `# ${'x'.repeat(MAX_CONFIG_BYTES - 3)}\n`);
  t.equal(fs.statSync(file).size, MAX_CONFIG_BYTES);
  t.same(loadConfig(file, true), defaultConfig(), 'exactly MAX_CONFIG_BYTES is read');
  t.throws(() => loadConfig(dir, true), { code: 'CONFIG_UNREADABLE', message: /EISDIR/ }, 'a directory: unreadable');
});

t.test("checkPaths answers as ConfigSchema's paths: same success, same paths", async (t) => {
  const value = fc.oneof(fc.constantFrom('/', '/run/x', 'relative', '', '/dev/shm/a b'), fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.constant(new Date(0)));
  const section = fc.oneof(
    fc.constant(undefined),
    fc.record({ runtime_dir: value, scoreboard: value }, { requiredKeys: [] }),
    fc.dictionary(fc.constantFrom('runtime_dir', 'scoreboard', 'other', 'Scoreboard'), value, { maxKeys: 3 }),
    value,
  );
  fc.assert(
    fc.property(section, (s) => {
      const hand = checkPaths(s);
      const zod = ConfigSchema.shape.paths.safeParse(s);
      if ('paths' in hand !== zod.success) throw new Error(`${JSON.stringify(s)}: ${'paths' in hand} by hand, ${zod.success} by zod`);
      if ('paths' in hand && zod.success) t.strictSame(hand.paths, zod.data);
    }),
    { numRuns: 2000 },
  );
});

t.test("checkPayloadLimit answers as ConfigSchema's secondary.max_payload_bytes: ConfigSchema refuses what it refuses, and takes the same limit", async (t) => {
  const value = fc.oneof(
    fc.constantFrom(MIN_MAX_PAYLOAD_BYTES - 1, MIN_MAX_PAYLOAD_BYTES, DEFAULT_MAX_PAYLOAD_BYTES, 1024 ** 3, 1024 ** 3 + 1, 2 ** 53, 0, -1, 16.5 * 1024 * 1024, NaN, Infinity),
    fc.integer(),
    fc.double(),
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(new Date(0)),
  );
  const section = fc.oneof(fc.constant(undefined), fc.record({ max_payload_bytes: value }, { requiredKeys: [] }), fc.record({ max_payload_bytes: value, max_leases: fc.constantFrom(1, 32) }), value);
  fc.assert(
    fc.property(section, (s) => {
      const hand = checkPayloadLimit(s);
      const zod = ConfigSchema.shape.secondary.safeParse(s);
      if ('problem' in hand && zod.success) throw new Error(`${String(s && typeof s === 'object' ? JSON.stringify(s) : s)}: refused by hand (${hand.problem}), taken by the schema`);
      if (!('problem' in hand) && zod.success) t.equal(hand.maxBytes, zod.data.max_payload_bytes);
      if (!('problem' in hand) && !zod.success && zod.error.issues.some((i) => i.path[0] === 'max_payload_bytes')) throw new Error(`${JSON.stringify(s)}: taken by hand, the schema refuses max_payload_bytes`);
    }),
    { numRuns: 2000 },
  );
});

t.test('loadPayloadLimit: the limit of a file, with the file, line and key of a bad one', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-limit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'd.conf');
  fs.writeFileSync(file, '[main]\nqueue_max = 5\n\n[secondary]\nmax_payload_bytes = 33554432\n');
  t.same(loadPayloadLimit(file, true), { maxBytes: 32 * 1024 * 1024, from: 'file' });
  fs.writeFileSync(file, '[main]\nqueue_max = 5\n');
  t.same(loadPayloadLimit(file, true), { maxBytes: DEFAULT_MAX_PAYLOAD_BYTES, from: 'default' }, 'not set: the default');
  t.same(loadPayloadLimit(path.join(dir, 'absent.conf'), false), { maxBytes: DEFAULT_MAX_PAYLOAD_BYTES, from: 'no file' }, 'a missing default file: the default');
  t.throws(() => loadPayloadLimit(path.join(dir, 'absent.conf'), true), { code: 'CONFIG_UNREADABLE' }, 'a missing file named with --config');
  fs.writeFileSync(file, '[secondary]\n\nmax_payload_bytes = 1024\n');
  const small = (() => { try { loadPayloadLimit(file, true); } catch (e) { return e as DispatchError; } })();
  t.equal(small?.code, 'CONFIG_INVALID');
  t.match(small?.message, new RegExp(`configuration '${file}' line 3: key 'secondary.max_payload_bytes': an integer from 16777216 to 1073741824`), 'names the file, line and key');
  t.same(small?.fields, { config: file, key: 'secondary.max_payload_bytes' });
  fs.writeFileSync(file, 'this is = = not toml\n');
  t.throws(() => loadPayloadLimit(file, true), { code: 'CONFIG_INVALID', message: /failed to parse configuration '.*d\.conf' line 1/ });
  fs.writeFileSync(file, 'secondary = 5\n');
  t.throws(() => loadPayloadLimit(file, true), { code: 'CONFIG_INVALID', message: /'secondary' is not a table/ });
});

// ---- properties: the configuration parser is a decoder of an operator's (or anyone's) file -

/** Keys and their valid ranges, from the schema (docs/PROTOCOL.md §5). */
const RANGES: Record<string, Record<string, [number, number]>> = {
  main: { reserve_timeout_ms: [10, 60_000], lease_ttl_ms: [100, 600_000], queue_timeout_ms: [0, 600_000], queue_max: [0, 1_000_000], client_idle_timeout_ms: [100, 3_600_000], heartbeat_stale_ms: [2000, 600_000] },
  secondary: { max_leases: [1, 100_000], request_deadline_ms: [10, 3_600_000], max_payload_bytes: [16 * 1024 * 1024, 1024 * 1024 * 1024], client_idle_timeout_ms: [100, 3_600_000] },
  watchdog: { probe_interval_ms: [50, 1500], max_missed: [1, 100] },
};
const SETTINGS = Object.entries(RANGES).flatMap(([section, keys]) => Object.entries(keys).map(([key, range]) => ({ section, key, range })));

t.test('property: any text is a configuration or CONFIG_INVALID, never another exception', async (t) => {
  const tomlish = fc.array(
    fc.oneof(
      fc.constantFrom('[main]', '[secondary]', '[watchdog]', '[paths]', '[[main]]', '[main.sub]', '[', ']', '=', '"', "'''", '#', ''),
      fc.tuple(fc.constantFrom(...SETTINGS.map((s) => s.key), 'x', 'main.queue_max', '"main"', ''), fc.constantFrom('=', ' = ', '=='), fc.oneof(fc.integer().map(String), fc.string(), fc.constantFrom('1e400', 'inf', 'nan', '0x10', '"5"', 'true', '[1,2]', '{ a = 1 }', '1_000', '-0'))).map(([k, eq, v]) => `${k}${eq}${v}`),
      fc.string(),
    ),
    { maxLength: 12 },
  );
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')), tomlish.map((ls) => ls.join('\n'))), (text) => {
      try {
        parseConfig(text, FILE);
      } catch (e) {
        const de = e as DispatchError;
        if (de.code !== 'CONFIG_INVALID') throw new Error(`threw ${String(e)} for ${JSON.stringify(text)}`);
        if (!de.message.startsWith(`failed to `) || !de.message.includes(FILE)) throw new Error(`message does not name the file: ${de.message}`);
      }
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 random files');
});

t.test('property: valid settings round-trip; one out of range is refused naming its key and line', async (t) => {
  const settings = fc.uniqueArray(fc.constantFrom(...SETTINGS), { selector: (s) => `${s.section}.${s.key}`, maxLength: SETTINGS.length });
  fc.assert(
    fc.property(settings, fc.nat(), fc.nat(), fc.boolean(), (chosen, valueSeed, badSeed, low) => {
      const values = chosen.map((s) => ({ ...s, value: s.range[0] + (valueSeed % (s.range[1] - s.range[0] + 1)) }));
      const render = (vs: typeof values) => ['main', 'secondary', 'watchdog'].map((sec) => `[${sec}]\n${vs.filter((v) => v.section === sec).map((v) => `${v.key} = ${v.value}`).join('\n')}`).join('\n\n');
      const text = render(values);
      const cfg = parseConfig(text, FILE) as unknown as Record<string, Record<string, number>>;
      for (const v of values) if (cfg[v.section]![v.key] !== v.value) throw new Error(`${v.section}.${v.key}: ${cfg[v.section]![v.key]} != ${v.value}`);
      if (values.length === 0) return;
      const bad = values[badSeed % values.length]!;
      const outOfRange = low ? bad.range[0] - 1 : bad.range[1] + 1;
      const badText = render(values.map((v) => (v === bad ? { ...v, value: outOfRange } : v)));
      const e = failure(badText);
      const line = badText.split('\n').findIndex((l) => l === `${bad.key} = ${outOfRange}`) + 1;
      if (e.code !== 'CONFIG_INVALID' || !e.message.includes(`line ${line}: key '${bad.section}.${bad.key}'`)) throw new Error(`expected line ${line} and key ${bad.section}.${bad.key}: ${e.message}`);
    }),
    { numRuns: 300 },
  );
  t.pass('300 random configurations');
});
