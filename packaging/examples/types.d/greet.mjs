// A dispatchd module handler: runs in a worker thread of each secondary (docs/TYPES.md).
// DATA is a Buffer; return a Buffer, a Uint8Array or a string. ctx.log lines reach the
// journal with TYPE=, LEASE= and SECONDARY= fields; ctx.signal fires at the deadline.
export default async function greet(data, ctx) {
  const name = data.toString('utf8').trim() || 'world';
  ctx.log.info(`greeting ${name}`, { chars: name.length });
  return `hello, ${name}\n`;
}
