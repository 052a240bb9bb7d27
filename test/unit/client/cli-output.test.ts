/**
 * dispatchctl's error lines (cli-output.ts errorLine): the message, the hint of what to do
 * without saying a thing twice, and the stable code.
 */
import t from 'tap';
import { errorLine } from '../../../daemons/client/cli-output.js';
import { DispatchError } from '../../../daemons/common/errors.js';

t.test("a type's payload limit: the server's \"send less\" is not said twice, and the hint names where the limit is set", async (t) => {
  const line = errorLine("'upper' request failed", new DispatchError('PAYLOAD_TOO_LARGE', "the 'upper' request carries 2000000 bytes, more than its type's max_payload_bytes (1048576 bytes); send less"));
  t.equal(line.split('send less').length - 1, 1, line);
  t.match(line, /; send less, or raise max_payload_bytes \(a type's own where its file sets one, in \/etc\/dispatchd\/types\.d; the package's built-in types, in \/usr\/share\/dispatchd\/types\.d, are not edited; else \[secondary\] max_payload_bytes in \/etc\/dispatchd\/dispatchd\.conf\) \[PAYLOAD_TOO_LARGE\]$/);
});

t.test('a message without the hint gets it whole; one that has it, nothing more', async (t) => {
  t.equal(errorLine('x', new DispatchError('PAYLOAD_TOO_LARGE', 'standard input is over the 16-byte request limit')), "dispatchctl: x: standard input is over the 16-byte request limit; send less, or raise max_payload_bytes (a type's own where its file sets one, in /etc/dispatchd/types.d; the package's built-in types, in /usr/share/dispatchd/types.d, are not edited; else [secondary] max_payload_bytes in /etc/dispatchd/dispatchd.conf) [PAYLOAD_TOO_LARGE]");
  t.equal(errorLine('x', new DispatchError('TIMEOUT', 'no answer in 5 ms; raise --timeout (ms) if the request needs longer')), 'dispatchctl: x: no answer in 5 ms; raise --timeout (ms) if the request needs longer [TIMEOUT]');
  t.equal(errorLine('x', new Error('boom')), 'dispatchctl: x: boom', 'not a DispatchError: no hint, no code');
});

t.test('control characters in a message are escaped: the line stays one line and cannot drive a terminal', async (t) => {
  const line = errorLine("'a\nb' request failed", new DispatchError('CONNECT_FAILED', "failed to connect to '/x\r\ny\u001b[31m\u007f': no such socket"));
  t.match(line, /^dispatchctl: 'a\\nb' request failed: failed to connect to '\/x\\r\\ny\\u001b\[31m\\u007f': no such socket.* \[CONNECT_FAILED\]$/);
  t.notMatch(line, /[\u0000-\u001f\u007f]/, 'no control character left');
  t.equal(errorLine('x', new Error('tab\there, é and ✓ stay')), 'dispatchctl: x: tab\\there, é and ✓ stay', 'only controls are escaped');
});
