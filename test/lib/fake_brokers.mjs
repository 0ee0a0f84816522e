// Hostile brokers for tests: plain TCP servers on 127.0.0.1 that speak just
// enough NATS, AMQP or Redis to get a client where it hurts, then misbehave
// (oversized or endless replies, garbage, floods, silence). Each returns a
// handle: { port, url(path), connections (accepted so far), open (still
// open), close() }.
//
//   const peer = await fakeRedis('endless-bulk');   peer.url('/s') = redis://127.0.0.1:PORT/s
//
// Behaviours:
//   fakeRedis:  'endless-bulk'  XADD answered with $2147483647 and endless bytes
//               'wide-array'    *2147483647 and endless :1 elements
//               'extra-replies' every command answered twice (a reply nobody asked for)
//               'silent'        reads, never answers
//   fakeNats:   'big-message'   a normal handshake, then a 100 MB MSG to the client's reply subject
//               'garbage-info'  garbage instead of INFO
//               'err-flood'     INFO, then -ERR lines without end
//               'endless-line'  INFO, then, for CONNECT, one line without end
//               'err-after-connect'  a normal handshake, then -ERR lines for the first publish
//               'silent'        accepts, says nothing (no INFO)
//               'silent-after-connect'  a normal handshake, then nothing
//   fakeAmqp:   'garbage'       garbage after the protocol header
//               'truncated'     a frame header announcing more than ever comes
//               'silent'        accepts, says nothing
import net from 'node:net';

const servers = new Set();
process.on('exit', () => { for (const s of servers) s.close(); });

// Starts a server whose connections are handed to `onConnection(socket)`.
async function serve(scheme, onConnection) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    handle.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    socket.on('error', () => {});
    onConnection(socket);
  });
  const handle = {
    connections: 0,
    get open() { return sockets.size; },
    port: 0,
    url: (path = '') => `${scheme}://127.0.0.1:${handle.port}${path}`,
    async close() {
      for (const s of sockets) s.destroy();
      servers.delete(server);
      await new Promise((resolve) => server.close(resolve));
    },
  };
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  servers.add(server);
  handle.port = server.address().port;
  return handle;
}

// Writes `chunk` again and again while the socket is open, as fast as the
// peer reads it (never more than the socket's buffer ahead): `limit` bytes
// in all, then `then` (a string or Buffer).
function stream(socket, chunk, { limit = Infinity, then } = {}) {
  let sent = 0;
  const more = () => {
    while (!socket.destroyed && sent < limit) {
      const part = limit - sent < chunk.length ? chunk.subarray(0, limit - sent) : chunk;
      sent += part.length;
      if (!socket.write(part)) return socket.once('drain', more);
    }
    if (!socket.destroyed && then) socket.write(then);
  };
  more();
}

// Calls onLine(line) for every CRLF- (or LF-) terminated line the peer sends.
function lines(socket, onLine) {
  let buffer = '';
  socket.on('data', (d) => {
    buffer += d.toString('latin1');
    for (let nl; (nl = buffer.indexOf('\n')) >= 0;) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      onLine(line);
    }
    if (buffer.length > 1 << 20) buffer = '';  // a payload, not a line
  });
}

const filler = Buffer.alloc(64 * 1024, 'x');

export function fakeRedis(behaviour) {
  return serve('redis', (socket) => {
    let answered = false;
    switch (behaviour) {
      case 'endless-bulk':
        socket.on('data', () => {
          if (answered) return;
          answered = true;
          socket.write('$2147483647\r\n');
          stream(socket, filler);
        });
        break;
      case 'wide-array':
        socket.on('data', () => {
          if (answered) return;
          answered = true;
          socket.write('*2147483647\r\n');
          stream(socket, Buffer.from(':1\r\n'.repeat(16 * 1024)));
        });
        break;
      case 'extra-replies':
        // Each command is one multi-bulk; count them by their "*N" lines.
        lines(socket, (line) => { if (line.startsWith('*')) socket.write('$3\r\n1-0\r\n$3\r\n1-0\r\n'); });
        break;
      case 'silent':
        socket.resume();
        break;
      default: throw new Error(`unknown behaviour ${behaviour}`);
    }
  });
}

function natsInfo(port) {
  return `INFO ${JSON.stringify({ server_id: 'FAKE', server_name: 'fake', version: '2.9.10', go: 'go1.19', host: '127.0.0.1',
                                  port, headers: true, max_payload: 1048576, proto: 1, jetstream: true })}\r\n`;
}

export async function fakeNats(behaviour, { size = 100 * 1024 * 1024 } = {}) {
  const handle = await serve('nats', (socket) => {
    switch (behaviour) {
      case 'big-message': {
        socket.write(natsInfo(handle.port));
        let sid = null;
        let sent = false;
        lines(socket, (line) => {
          if (line === 'PING') socket.write('PONG\r\n');
          const words = line.split(/\s+/);
          if (words[0] === 'SUB') sid = words.at(-1);  // SUB subject [queue] sid
          const pub = /^H?PUB (\S+) (\S+) /.exec(line);
          if (pub && sid && !sent) {
            sent = true;
            // To the client's reply subject on its own subscription: it
            // takes the whole message before it can look at it.
            socket.write(`MSG ${pub[2]} ${sid} ${size}\r\n`);
            stream(socket, filler, { limit: size, then: '\r\n' });
          }
        });
        break;
      }
      case 'garbage-info':
        socket.write('INFO {"server_id": nonsense \x00\x01\x02 ]]]\r\n');
        socket.resume();
        break;
      case 'err-flood':
        socket.write(natsInfo(handle.port));
        socket.once('data', () => stream(socket, Buffer.from("-ERR 'Unknown Protocol Operation'\r\n".repeat(512))));
        break;
      case 'endless-line':
        socket.write(natsInfo(handle.port));
        socket.once('data', () => stream(socket, filler));
        break;
      case 'err-after-connect':
        socket.write(natsInfo(handle.port));
        lines(socket, (line) => {
          if (line === 'PING') socket.write('PONG\r\n');
          if (/^H?PUB /.test(line)) stream(socket, Buffer.from("-ERR 'Unknown Protocol Operation'\r\n".repeat(512)), { limit: 1 << 20 });
        });
        break;
      case 'silent':
        socket.resume();
        break;
      case 'silent-after-connect':
        socket.write(natsInfo(handle.port));
        lines(socket, (line) => { if (line === 'PING') socket.write('PONG\r\n'); });
        break;
      default: throw new Error(`unknown behaviour ${behaviour}`);
    }
  });
  return handle;
}

export function fakeAmqp(behaviour) {
  return serve('amqp', (socket) => {
    switch (behaviour) {
      case 'garbage':
        socket.once('data', () => stream(socket, Buffer.from('\x01\x00\x00garbage garbage garbage\xce'.repeat(64)), { limit: 1 << 20 }));
        socket.resume();
        break;
      case 'truncated':
        // A method frame on channel 0 announcing 60000 bytes; 10 come.
        socket.once('data', () => socket.write(Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0xea, 0x60]), Buffer.alloc(10)])));
        socket.resume();
        break;
      case 'silent':
        socket.resume();
        break;
      default: throw new Error(`unknown behaviour ${behaviour}`);
    }
  });
}
