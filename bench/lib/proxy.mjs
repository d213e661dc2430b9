// A small TCP proxy in front of PostgreSQL, run in a child process of its own
// so that the harness never shares an event loop with it.
//
// - Latency: every chunk is held for `delayMs` in each direction (5 ms each way
//   gives about 10 ms of added round-trip time; the kernel here has no netem).
// - Counting: the frontend (client -> server) stream is parsed and the messages
//   sent after authentication are counted by type (Q simple query, P Parse,
//   B Bind, E Execute, S Sync, ...). SSLRequest and GSSENCRequest are answered
//   'N' by the proxy itself (after a simulated round trip), so the stream stays
//   plaintext and parseable; CancelRequest is forwarded untouched.
//
// Frontend framing: untyped packets (int32 length incl. itself + body) until the
// StartupMessage (protocol 196608), then type byte + int32 length + body.
// "After authentication" = from the first message that follows the startup
// packet and is not a password message ('p': password, SASL initial/response).
//
// Parent API: `await startProxy({ host, port, delayMs })` -> { port, counts(),
// reset(), close() }.
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

export async function startProxy({ host, port, delayMs = 0 }) {
  const child = fork(fileURLToPath(import.meta.url), ['--child'], {
    env: { ...process.env, PROXY_TARGET: `${host}:${port}`, PROXY_DELAY_MS: String(delayMs) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = [];
  child.on('message', (m) => waiting.shift()?.(m));
  const ask = (m) => new Promise((resolve) => { waiting.push(resolve); child.send(m); });
  const ready = await new Promise((resolve, reject) => {
    waiting.push(resolve);
    child.once('exit', (code) => reject(new Error(`proxy exited (${code})`)));
  });
  return {
    port: ready.port,
    pid: child.pid,
    delayMs,
    counts: () => ask({ cmd: 'counts' }),
    reset: () => ask({ cmd: 'reset' }),
    close: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill();
    }),
  };
}

function emptyCounts() {
  return { connections: 0, types: {}, bytesAfterAuth: 0 };
}

/** Incremental parser of one client's frontend stream; calls onType(type, len) per message after auth. */
class FrontendParser {
  constructor(totals) {
    this.totals = totals;
    this.typed = false;
    this.authDone = false;
    this.header = Buffer.alloc(0); // partial 5-byte header
    this.skip = 0; // body bytes still to skip in the current message
  }

  /** Feed bytes of the typed phase. */
  feed(buf) {
    let i = 0;
    while (i < buf.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - i);
        this.skip -= n;
        if (this.authDone) this.totals.bytesAfterAuth += n;
        i += n;
        continue;
      }
      const need = 5 - this.header.length;
      const take = buf.subarray(i, i + need);
      this.header = Buffer.concat([this.header, take]);
      i += take.length;
      if (this.header.length < 5) break;
      const type = String.fromCharCode(this.header[0]);
      const len = this.header.readInt32BE(1);
      this.header = Buffer.alloc(0);
      this.skip = len - 4;
      if (!this.authDone && type === 'p') continue;
      this.authDone = true;
      this.totals.bytesAfterAuth += 5;
      this.totals.types[type] = (this.totals.types[type] ?? 0) + 1;
    }
  }
}

function runChild() {
  const [thost, tport] = process.env.PROXY_TARGET.split(':');
  const delayMs = Number(process.env.PROXY_DELAY_MS ?? 0);
  let totals = emptyCounts();
  const sockets = new Set();

  // Ordered delivery: setTimeout with one fixed delay fires in FIFO order.
  const later = (fn) => (delayMs > 0 ? setTimeout(fn, delayMs) : fn());
  // PROXY_TRACE=1: one line per chunk on stderr (ms since the connection opened, direction, bytes, message types).
  const trace = process.env.PROXY_TRACE ? (t0, dir, chunk) => {
    const types = dir === '>' ? '' : ` ${chunk.length > 0 ? String.fromCharCode(chunk[0]) : ''}`;
    process.stderr.write(`[proxy] ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(2)} ms ${dir} ${chunk.length} B${types}\n`);
  } : null;

  const server = net.createServer((client) => {
    client.setNoDelay(true);
    sockets.add(client);
    const counts = totals;
    counts.connections++;
    const upstream = net.connect({ host: thost, port: Number(tport) });
    upstream.setNoDelay(true);
    sockets.add(upstream);
    let upstreamOpen = false;
    const pendingUp = [];
    upstream.on('connect', () => {
      upstreamOpen = true;
      for (const b of pendingUp.splice(0)) upstream.write(b);
    });
    const toServer = (b) => later(() => { if (upstream.destroyed) return; if (upstreamOpen) upstream.write(b); else pendingUp.push(b); });
    const toClient = (b) => later(() => { if (!client.destroyed) client.write(b); });

    const parser = new FrontendParser(counts);
    let startupBuf = Buffer.alloc(0);
    let passthrough = false;
    const t0 = process.hrtime.bigint();
    client.on('data', (chunk) => {
      trace?.(t0, '>', chunk);
      if (passthrough) return toServer(chunk);
      if (parser.typed) {
        parser.feed(chunk);
        return toServer(chunk);
      }
      startupBuf = Buffer.concat([startupBuf, chunk]);
      while (!parser.typed && !passthrough && startupBuf.length >= 8) {
        const len = startupBuf.readInt32BE(0);
        if (startupBuf.length < len) return;
        const code = startupBuf.readInt32BE(4);
        const packet = startupBuf.subarray(0, len);
        startupBuf = startupBuf.subarray(len);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          // Refuse encryption ourselves, after the round trip the server would have cost.
          later(() => toClient(Buffer.from('N')));
        } else if (code === CANCEL_REQUEST) {
          passthrough = true;
          toServer(packet);
        } else {
          parser.typed = true;
          toServer(packet);
        }
      }
      if ((parser.typed || passthrough) && startupBuf.length > 0) {
        const rest = startupBuf;
        startupBuf = Buffer.alloc(0);
        if (parser.typed) parser.feed(rest);
        toServer(rest);
      }
    });
    upstream.on('data', (chunk) => { trace?.(t0, '<', chunk); toClient(chunk); });
    const end = () => {
      later(() => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); });
    };
    client.on('end', end);
    upstream.on('end', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));

  process.on('message', (m) => {
    if (m.cmd === 'counts') process.send(totals);
    else if (m.cmd === 'reset') { totals = emptyCounts(); process.send({ ok: true }); }
  });
  process.on('disconnect', () => {
    for (const s of sockets) s.destroy();
    server.close();
    process.exit(0);
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (process.argv[2] === '--child') runChild();
