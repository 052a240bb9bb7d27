/**
 * spec/*.json, the language-neutral protocol vectors, against the TypeScript implementation:
 * frames (frame.ts), mailbox lines (mailbox-codec.ts, messages.ts), served-types files
 * (served-types.ts), and scripted exchanges against the client library (client.ts) with a
 * fake main and secondary. python/tests/test_spec.py runs the same files against the Python
 * package, so neither implementation can drift from them.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { DispatchClient, Session } from '../../daemons/client/client.js';
import { DispatchError } from '../../daemons/common/errors.js';
import { exitCodeFor } from '../../daemons/common/exit-codes.js';
import { FrameConnection } from '../../daemons/common/frame-connection.js';
import { encodeFrame, FrameDecoder, type FrameHeader } from '../../daemons/common/frame.js';
import { encodeMessage, MailboxDecoder } from '../../daemons/common/mailbox-codec.js';
import { PIPE_BUF, type MailboxMessage } from '../../daemons/common/messages.js';
import { ServedTypesFile } from '../../daemons/common/served-types.js';

const SPEC = path.join(import.meta.dirname, '..', '..', 'spec');
const load = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(SPEC, name), 'utf8')) as T;

interface FrameVector {
  name: string;
  max_body_bytes: number;
  hex: string;
  frames: Array<{ header: FrameHeader; body_hex: string }>;
  error?: string;
  encode?: boolean;
  decided_from_prefix?: boolean;
}

function decodeAll(data: Buffer, maxBody: number, step: number) {
  const dec = new FrameDecoder(maxBody);
  const frames: Array<{ header: FrameHeader; body_hex: string }> = [];
  for (let i = 0; i < Math.max(data.length, 1); i += step) {
    dec.push(data.subarray(i, i + step));
    for (;;) {
      const r = dec.next();
      if (r.kind === 'need-more') break;
      if (r.kind === 'error') return { frames, error: r.error.code as string | undefined };
      frames.push({ header: r.frame.header, body_hex: r.frame.body.toString('hex') });
    }
  }
  return { frames, error: undefined };
}

t.test('frames', async (t) => {
  const { vectors } = load<{ vectors: FrameVector[] }>('frames.json');
  t.ok(vectors.length > 30, 'the file holds the vectors');
  for (const v of vectors) {
    const data = Buffer.from(v.hex, 'hex');
    for (const step of [data.length || 1, 1]) {
      const got = decodeAll(data, v.max_body_bytes, step);
      t.same(got.frames, v.frames, `${v.name} (${step === 1 ? 'byte by byte' : 'whole'}): frames`);
      t.equal(got.error, v.error, `${v.name} (${step === 1 ? 'byte by byte' : 'whole'}): error`);
    }
    if (v.decided_from_prefix) t.ok(data.length <= 12 && v.error, `${v.name}: decided from the prefix`);
    if (v.encode) {
      const f = v.frames[0]!;
      t.equal(Buffer.concat(encodeFrame(f.header, Buffer.from(f.body_hex, 'hex'))).toString('hex'), v.hex, `${v.name}: encodes to the vector`);
    }
  }
});

t.test('mailbox lines', async (t) => {
  const spec = load<{ pipe_buf: number; lines: Array<{ name: string; line: string; message?: MailboxMessage; error?: string; recovered?: MailboxMessage }> }>('mailbox.json');
  t.equal(spec.pipe_buf, PIPE_BUF);
  for (const v of spec.lines) {
    const out = new MailboxDecoder().push(Buffer.from(v.line + '\n', 'utf8'));
    t.equal(out.length, v.recovered ? 2 : 1, `${v.name}: ${v.recovered ? 'the damaged line, then the recovered message' : 'one outcome'}`);
    const o = out[0]!;
    if (v.error) {
      t.equal(o.kind === 'invalid' ? o.error.code : 'a message', v.error, v.name);
      if (v.recovered) t.same(out[1]?.kind === 'message' ? out[1].message : out[1], v.recovered, `${v.name}: recovered`);
    } else {
      t.same(o.kind === 'message' ? o.message : o.error.message, v.message, v.name);
      t.ok(encodeMessage(v.message!).length <= PIPE_BUF, `${v.name}: re-encodes within PIPE_BUF`);
    }
  }
});

t.test('served-types files', async (t) => {
  const { files } = load<{ files: Array<{ name: string; text: string; valid: boolean }> }>('served-types.json');
  for (const v of files) {
    let valid: boolean;
    try {
      valid = ServedTypesFile.safeParse(JSON.parse(v.text)).success;
    } catch {
      valid = false;
    }
    t.equal(valid, v.valid, v.name);
  }
});

interface Step {
  expect: FrameHeader;
  expect_body?: string;
  reply: FrameHeader | null;
  reply_body?: string;
  then: 'keep' | 'close';
}
interface Exchange {
  name: string;
  request: { type: string; data?: string; session?: string[] };
  client: { attempts: number; timeout_ms: number };
  main: Step[];
  secondary: Step[];
  outcome: { result?: string; results?: string[]; error?: string; exit_code?: number; may_have_run?: boolean; attempts?: number; leases: number; runs: number; connections?: { main: number; main_kept?: number; secondary: number } };
}

const subst = (v: unknown, sock: string): unknown =>
  v === '$SECONDARY_SOCKET' ? sock : Array.isArray(v) ? v.map((x) => subst(x, sock)) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x, sock)])) : v;

/** A fake server playing `steps`, one per frame received, whatever the connection. */
async function scripted(sock: string, steps: Step[], secondarySocket: string, maxBody: number) {
  const s = { frames: 0, connections: 0, problems: [] as string[], steps: [...steps], server: undefined as unknown as net.Server };
  s.server = net.createServer((socket) => {
    s.connections++;
    const c = new FrameConnection(socket, { maxBodyBytes: maxBody, idleTimeoutMs: 0 });
    c.on('error', () => undefined);
    c.on('frame', (f) => {
      s.frames++;
      const step = s.steps.shift();
      if (!step) {
        s.problems.push(`${sock}: a frame beyond the script: ${JSON.stringify(f.header)}`);
        c.destroy();
        return;
      }
      for (const [k, v] of Object.entries(step.expect)) if (f.header[k] !== v) s.problems.push(`${sock}: expected ${k}=${JSON.stringify(v)}, got ${JSON.stringify(f.header[k])}`);
      if (f.header.op === 'lease' && !(Number.isInteger(f.header.wait_ms) && (f.header.wait_ms as number) >= 0 && (f.header.wait_ms as number) <= 3_600_000)) s.problems.push(`${sock}: wait_ms ${String(f.header.wait_ms)} is not an integer 0..3600000`);
      if (step.expect_body !== undefined && f.body.toString() !== step.expect_body) s.problems.push(`${sock}: expected body ${step.expect_body}, got ${f.body.toString()}`);
      if (step.reply) c.send(subst(step.reply, secondarySocket) as FrameHeader, Buffer.from(step.reply_body ?? ''));
      if (step.then === 'close') c.end(0);
    });
  });
  await new Promise<void>((resolve) => s.server.listen(sock, resolve));
  return s;
}

t.test('exchanges', async (t) => {
  const { exchanges } = load<{ exchanges: Exchange[] }>('exchanges.json');
  t.ok(exchanges.length > 20, 'the file holds the exchanges');
  for (const ex of exchanges) {
    await t.test(ex.name, async (t) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spec-'));
      const secSock = path.join(dir, 'secondary-1.sock');
      const main = await scripted(path.join(dir, 'main.sock'), ex.main, secSock, 0);
      const sec = await scripted(secSock, ex.secondary, secSock, 1 << 20);
      t.teardown(() => {
        main.server.close();
        sec.server.close();
        fs.rmSync(dir, { recursive: true, force: true });
      });
      const client = new DispatchClient({ socket: path.join(dir, 'main.sock'), attempts: ex.client.attempts, timeoutMs: ex.client.timeout_ms });
      const want = ex.outcome;
      const got: Record<string, unknown> = {};
      try {
        if (ex.request.session) {
          const grant = await client.lease(ex.request.type);
          const session = await Session.open(grant, 1 << 20, 5000);
          try {
            const results: string[] = [];
            for (const d of ex.request.session) results.push((await session.run(ex.request.type, Buffer.from(d), 5000)).toString());
            got.results = results;
          } finally {
            session.close();
          }
        } else {
          const info = await client.requestWithInfo(ex.request.type, Buffer.from(ex.request.data ?? ''));
          got.result = info.result.toString();
          got.attempts = info.attempts;
        }
      } catch (err) {
        if (!(err instanceof DispatchError)) throw err;
        got.error = err.code;
        got.exit_code = exitCodeFor(err.code);
        got.may_have_run = err.mayHaveRun;
        got.attempts = want.attempts; // not observable on a failure; the frame counts are
      }
      // Frames still in flight reach the servers before they are counted.
      for (let i = 0; i < 200 && (main.steps.length || sec.steps.length); i++) await new Promise((r) => setTimeout(r, 10));
      for (const key of ['result', 'results', 'error', 'exit_code', 'attempts', 'may_have_run'] as const) {
        if (want[key] !== undefined) t.same(got[key], want[key], key);
      }
      t.equal(main.frames, want.leases, 'lease frames main received');
      t.equal(sec.frames, want.runs, 'run frames the secondary received');
      if (want.connections) t.same({ main: main.connections, secondary: sec.connections }, { main: want.connections.main_kept ?? want.connections.main, secondary: want.connections.secondary }, 'connections each accepted (this library keeps its connection to main)');
      t.same([...main.problems, ...sec.problems], [], 'every frame was as scripted');
      t.same([...main.steps, ...sec.steps], [], 'every step was used');
    });
  }
});
