import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ERROR_CODES, type ErrorCode } from '../../../daemons/common/errors.js';
import { EXIT, exitCodeFor } from '../../../daemons/common/exit-codes.js';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

/** The contract: what each error code ends a process with. */
const EXPECTED: Record<ErrorCode, keyof typeof EXIT> = {
  CONFIG_UNREADABLE: 'CONFIG',
  CONFIG_INVALID: 'CONFIG',
  LISTEN_FDS_INVALID: 'FAILURE',
  LISTEN_FDS_MISSING: 'FAILURE',
  FRAME_BAD_MAGIC: 'PROTOCOL',
  FRAME_BAD_VERSION: 'PROTOCOL',
  FRAME_TOO_LARGE: 'PROTOCOL',
  FRAME_BAD_HEADER: 'PROTOCOL',
  MESSAGE_TOO_LARGE: 'FAILURE',
  MESSAGE_INVALID: 'FAILURE',
  MAILBOX_NO_READER: 'FAILURE',
  MAILBOX_OPEN_FAILED: 'FAILURE',
  MAILBOX_FULL: 'FAILURE',
  MAILBOX_WRITE_FAILED: 'FAILURE',
  SCOREBOARD_OPEN_FAILED: 'FAILURE',
  SCOREBOARD_BAD_LAYOUT: 'FAILURE',
  SCOREBOARD_NO_SPACE: 'FAILURE',
  SCOREBOARD_IO: 'FAILURE',
  BAD_REQUEST: 'REJECTED',
  UNKNOWN_TYPE: 'REJECTED',
  PAYLOAD_TOO_LARGE: 'REJECTED',
  UNAVAILABLE: 'UNAVAILABLE',
  BUSY: 'BUSY',
  LEASE_UNKNOWN: 'REJECTED',
  LEASE_EXPIRED: 'REJECTED',
  LEASE_STALE: 'REJECTED',
  DEADLINE_EXCEEDED: 'TIMED_OUT',
  SHUTTING_DOWN: 'UNAVAILABLE',
  IDLE_TIMEOUT: 'TIMED_OUT',
  INTERNAL: 'FAILURE',
  LEASE_WRONG_TYPE: 'REJECTED',
  HANDLER_FAILED: 'HANDLER_FAILED',
  HANDLER_CRASHED: 'HANDLER_FAILED',
  RESULT_TOO_LARGE: 'HANDLER_FAILED',
  CONNECT_FAILED: 'UNAVAILABLE',
  CONNECTION_LOST: 'UNAVAILABLE',
  TIMEOUT: 'TIMED_OUT',
  PROTOCOL_ERROR: 'PROTOCOL',
  SCOREBOARD_MISSING: 'UNAVAILABLE',
  OUTCOME_UNKNOWN: 'OUTCOME_UNKNOWN',
  RESTART_FAILED: 'FAILURE',
  SCALE_FAILED: 'FAILURE',
};

t.test('the exit-code table: sysexits.h values, unique', async (t) => {
  t.same(EXIT, { OK: 0, FAILURE: 1, USAGE: 64, REJECTED: 65, UNAVAILABLE: 69, HANDLER_FAILED: 70, OUTCOME_UNKNOWN: 74, BUSY: 75, PROTOCOL: 76, CONFIG: 78, TIMED_OUT: 124 });
  const values = Object.values(EXIT);
  t.equal(new Set(values).size, values.length, 'no two names share a value');
  t.ok(values.every((v) => Number.isInteger(v) && v >= 0 && v <= 125), 'all are valid exit statuses below the shell range');
});

t.test('every error code maps to a documented exit code', async (t) => {
  const documented = new Set<number>(Object.values(EXIT));
  t.same(Object.keys(EXPECTED).sort(), [...ERROR_CODES].sort(), 'this test knows every code');
  for (const code of ERROR_CODES) {
    const exit = exitCodeFor(code);
    t.ok(documented.has(exit), `${code} → ${exit} is in the table`);
    t.equal(exit, EXIT[EXPECTED[code]], `${code} → ${EXPECTED[code]}`);
  }
  t.equal(exitCodeFor(undefined), EXIT.FAILURE, 'a non-dispatchd error is a plain failure');
  t.not(exitCodeFor('INTERNAL'), EXIT.CONFIG, 'only configuration errors stop restarts');
  t.same(ERROR_CODES.filter((c) => exitCodeFor(c) === EXIT.CONFIG).sort(), ['CONFIG_INVALID', 'CONFIG_UNREADABLE'], 'exactly the configuration errors exit 78');
});

/** The exit statuses listed under ".SH EXIT STATUS" of a man page. */
function manExitStatuses(file: string): number[] {
  const text = fs.readFileSync(file, 'utf8');
  const section = /^\.SH EXIT STATUS\n([\s\S]*?)(?=^\.SH )/m.exec(text + '\n.SH END\n');
  if (!section) return [];
  return [...section[1]!.matchAll(/^\.B (\d+)\s*$/gm)].map((m) => Number(m[1]));
}

const missing = (p: string) => (fs.existsSync(root(p)) ? false : `${p} does not exist yet`);

t.test('dispatchd(8) lists the whole table, in order', { skip: missing('docs/man/dispatchd.8') }, async (t) => {
  t.same(manExitStatuses(root('docs/man/dispatchd.8')), Object.values(EXIT));
});

t.test('dispatchctl(1) lists no status outside the table', { skip: missing('docs/man/dispatchctl.1') }, async (t) => {
  const listed = manExitStatuses(root('docs/man/dispatchctl.1'));
  t.ok(listed.length > 0, 'it has an EXIT STATUS section');
  const values = new Set<number>(Object.values(EXIT));
  t.same(listed.filter((v) => !values.has(v)), []);
});

t.test('README lists every exit code', { skip: missing('README.md') }, async (t) => {
  const text = fs.readFileSync(root('README.md'), 'utf8');
  // The rows "| code | NAME | meaning |" of the table under "## Exit codes".
  const section = /^## Exit codes\n([\s\S]*?)(?=^## |$(?![\s\S]))/m.exec(text)?.[1] ?? '';
  const rows = [...section.matchAll(/^\|\s*(\d+)\s*\|\s*([A-Z_]+)\s*\|/gm)].map((m) => [m[2]!, Number(m[1])]);
  t.same(Object.fromEntries(rows), EXIT, 'the README table has every name with its value, and no other');
});

t.test('units wire "bad configuration" to RestartPreventExitStatus=', { skip: missing('units') }, async (t) => {
  const dir = root('units');
  const services = fs.readdirSync(dir).filter((f) => f.endsWith('.service') && f !== 'dispatchd-scoreboard.service');
  t.ok(services.length > 0, 'there are daemon units');
  for (const s of services) {
    const text = fs.readFileSync(`${dir}/${s}`, 'utf8');
    t.match(text, new RegExp(`^RestartPreventExitStatus=${EXIT.USAGE} ${EXIT.CONFIG}$`, "m"), s);
  }
});
