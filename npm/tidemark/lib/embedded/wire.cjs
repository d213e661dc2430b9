'use strict';
// PGlite speaks PostgreSQL's wire protocol through `execProtocolRaw`, as one
// session. This file lets ordinary clients talk to it: it frames the bytes a
// client sends into whole frontend messages and feeds them, in order, to the
// one session, sending back what PGlite answers. Two transports use the same
// framing: an in-process stream.Duplex (the wasm engine's socket) and a
// loopback TCP listener (the native engine, and `tidemark db serve`).
//
// Many connections share one session, so access is arbitrated: a connection
// that is inside a transaction, or in the middle of an extended-protocol
// exchange (Parse ... Sync) or a COPY, keeps the session until PostgreSQL says
// it is idle again (ReadyForQuery 'I'); the others' messages wait their turn.
// Prepared statements get per-connection names (Parse, Bind, Describe and
// Close are rewritten), so two clients can both prepare "s1" (Prisma,
// postgres.js and node-postgres name theirs), and a client's statements are
// closed when it leaves. Everything else that lives in a session (SET,
// advisory locks, temp tables, SQL-level PREPARE) is shared while more than
// one client is connected, and reset (DISCARD ALL) when the last one leaves.

const net = require('node:net');
const { Duplex } = require('node:stream');

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
// Startup packets are small; anything bigger is not PostgreSQL talking.
const MAX_STARTUP = 10_000;

/** A frontend message with a type byte: type, int32 length (itself included), body. */
function typed(type, body = Buffer.alloc(0)) {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

const SYNC = typed('S');
const quoteIdent = (name) => `"${String(name).replace(/"/g, '""')}"`;
const query = (sql) => typed('Q', Buffer.from(`${sql}\0`));

/** An ErrorResponse (severity FATAL) with SQLSTATE `code`. */
function errorResponse(code, message) {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`);
  const out = Buffer.alloc(5 + fields.length);
  out[0] = 0x45; // 'E'
  out.writeInt32BE(4 + fields.length, 1);
  fields.copy(out, 5);
  return out;
}

/**
 * The transaction status of the last ReadyForQuery in `bytes` (whole backend
 * messages): 'I' idle, 'T' in a transaction, 'E' in a failed transaction, or
 * undefined when there is none.
 */
function lastReadyStatus(bytes) {
  let status;
  let i = 0;
  while (i + 5 <= bytes.length) {
    const len = ((bytes[i + 1] << 24) | (bytes[i + 2] << 16) | (bytes[i + 3] << 8) | bytes[i + 4]) >>> 0;
    if (len < 4) break;
    if (bytes[i] === 0x5a && len === 5 && i + 5 < bytes.length) status = String.fromCharCode(bytes[i + 5]);
    i += 1 + len;
  }
  return status;
}

/**
 * One PGlite session shared by many connections. Jobs run one at a time, in
 * arrival order, except that while a connection owns the session (see the
 * file comment) only its jobs run.
 */
class Session {
  constructor(db, { resetWhenIdle = false } = {}) {
    this.db = db;
    this.resetWhenIdle = resetWhenIdle;
    this.jobs = [];
    this.owner = null;
    this.busy = false;
    this.connections = new Set();
    this.dirty = false;
    this.closing = undefined;
    this.idleWaiters = [];
  }

  /** Queues `message` for `conn`; `deliver(bytes)` gets PGlite's answer. */
  submit(conn, message, deliver) {
    this.jobs.push({ conn, message, deliver });
    this.pump();
  }

  pump() {
    if (this.busy) return;
    const i = this.jobs.findIndex((j) => this.owner === null || j.conn === this.owner);
    if (i === -1) {
      if (this.jobs.length === 0 && this.owner === null) {
        for (const resolve of this.idleWaiters.splice(0)) resolve();
      }
      return;
    }
    const [job] = this.jobs.splice(i, 1);
    this.busy = true;
    this.owner = job.conn;
    this.dirty = true;
    this.db
      .execProtocolRaw(job.message)
      .then(
        (out) => {
          // Stays the owner until PostgreSQL reports it idle.
          const status = lastReadyStatus(out);
          if (status === 'I' || job.conn === null) this.owner = null;
          if (job.deliver) job.deliver(out, status);
        },
        (err) => {
          this.owner = null;
          if (job.conn) job.conn.fail(err);
        },
      )
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  attach(conn) {
    this.connections.add(conn);
  }

  /**
   * A connection went away: drop its queued messages and, if it held the
   * session (an open transaction, an unfinished Parse/Bind/Execute or COPY),
   * end that with Sync and ROLLBACK, as PostgreSQL does when a client
   * disconnects.
   */
  detach(conn) {
    if (!this.connections.delete(conn)) return;
    this.jobs = this.jobs.filter((j) => j.conn !== conn);
    const leftovers = conn.leftovers();
    // Its prepared statements and startup settings go with it (after any
    // cleanup below; as conn null: when nobody owns the session).
    if (leftovers) this.jobs.push({ conn: null, message: leftovers });
    if (conn.settings.length > 0 && !(this.connections.size === 0 && this.resetWhenIdle)) {
      this.jobs.push({ conn: null, message: query(conn.settings.map((n) => `RESET ${quoteIdent(n)}`).join('; ')) });
    }
    if (this.owner === conn) {
      let attempts = 0;
      const cleanup = (message) => ({
        conn,
        message,
        deliver: (_out, status) => {
          if (status === 'I') return;
          attempts += 1;
          // Sync ends an extended-protocol exchange; ROLLBACK ends a
          // transaction (and a COPY). Give up owning after a few tries so a
          // stuck state never blocks everyone else.
          if (attempts <= 3) this.jobs.unshift(cleanup(query('ROLLBACK')));
          else if (this.owner === conn) this.owner = null;
        },
      });
      this.jobs.unshift(cleanup(SYNC));
    }
    if (this.connections.size === 0 && this.resetWhenIdle) {
      // The next client gets a fresh session: no settings, locks, prepared
      // statements or temp tables left by the last one.
      this.jobs.push({ conn: null, message: query('DISCARD ALL') });
    }
    this.pump();
  }

  /** Resolves when no job is queued or running and nobody owns the session. */
  idle() {
    if (!this.busy && this.jobs.length === 0 && this.owner === null) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Waits for the queue to drain, then closes PGlite (which flushes its files). */
  close() {
    this.closing ??= (async () => {
      for (const conn of [...this.connections]) conn.close();
      await this.idle();
      await this.db.close();
    })();
    return this.closing;
  }
}

/** The zero-terminated string at `at` in `buf`: `{ text, end }` (end: after the 0). */
function cstring(buf, at) {
  const zero = buf.indexOf(0, at);
  if (zero === -1) return undefined;
  return { text: buf.subarray(at, zero), end: zero + 1 };
}

/** `message` with the C string at `at` replaced by `name`. */
function replaceCString(message, at, end, name) {
  const out = Buffer.concat([message.subarray(0, at), Buffer.from(name), Buffer.from([0]), message.subarray(end)]);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

let nextConnectionId = 1;

/** The key/value pairs of a StartupMessage (after length and protocol code). */
function startupParams(packet) {
  const params = [];
  let at = 8;
  for (;;) {
    const key = cstring(packet, at);
    if (!key || key.text.length === 0) break;
    const value = cstring(packet, key.end);
    if (!value) break;
    params.push([key.text.toString('utf8'), value.text.toString('utf8')]);
    at = value.end;
  }
  return params;
}

/**
 * The settings a StartupMessage asks for, as PostgreSQL applies them: every
 * parameter but user, database, replication and options (and _pq_.*
 * protocol options) is a setting, and options holds `-c name=value` and
 * `--name=value` switches (space-separated, backslash escapes a space).
 * PGlite ignores them all, so the wire layer applies them with set_config.
 */
function startupSettings(params) {
  const settings = [];
  for (const [key, value] of params) {
    if (['user', 'database', 'replication'].includes(key) || key.startsWith('_pq_.')) continue;
    if (key !== 'options') {
      settings.push([key, value]);
      continue;
    }
    const words = [];
    let word = '';
    let escaped = false;
    for (const ch of value) {
      if (escaped) {
        word += ch;
        escaped = false;
      } else if (ch === '\\') {
        escaped = true;
      } else if (/\s/.test(ch)) {
        if (word) words.push(word);
        word = '';
      } else {
        word += ch;
      }
    }
    if (word) words.push(word);
    for (let i = 0; i < words.length; i += 1) {
      let pair;
      if (words[i] === '-c') pair = words[(i += 1)];
      else if (words[i].startsWith('-c')) pair = words[i].slice(2);
      else if (words[i].startsWith('--')) pair = words[i].slice(2);
      const eq = pair === undefined ? -1 : pair.indexOf('=');
      if (eq > 0) {
        const name = words[i].startsWith('--') ? pair.slice(0, eq).replace(/-/g, '_') : pair.slice(0, eq);
        settings.push([name, pair.slice(eq + 1)]);
      }
    }
  }
  return settings;
}

/** Field `code` (e.g. 'M', the message) of an ErrorResponse or NoticeResponse. */
function errorField(message, code) {
  let at = 5;
  while (at < message.length && message[at] !== 0) {
    const field = cstring(message, at + 1);
    if (!field) return undefined;
    if (message[at] === code.charCodeAt(0)) return field.text.toString('utf8');
    at = field.end;
  }
  return undefined;
}

const literal = (s) => `'${String(s).replace(/'/g, "''")}'`;

/**
 * Whole backend messages in `bytes`: `[{ type, bytes }]`, copied (PGlite's
 * answer may be a view into memory its next call reuses).
 */
function backendMessages(bytes) {
  const out = [];
  let i = 0;
  const buf = Buffer.from(bytes);
  while (i + 5 <= buf.length) {
    const len = buf.readInt32BE(i + 1);
    if (len < 4 || i + 1 + len > buf.length) break;
    out.push({ type: String.fromCharCode(buf[i]), bytes: buf.subarray(i, i + 1 + len) });
    i += 1 + len;
  }
  return out;
}

/**
 * One client connection: frames what it sends (the untyped startup packets
 * first, then type byte + length messages) and passes each whole message to
 * the session. `transport.send(bytes)` and `transport.end()` reach the client.
 */
class Connection {
  constructor(session, transport) {
    this.session = session;
    this.transport = transport;
    this.chunks = [];
    this.length = 0;
    this.started = false;
    this.closed = false;
    this.prefix = `tm${nextConnectionId++}_`;
    this.statements = new Set();
    this.settings = [];
    session.attach(this);
  }

  /**
   * Gives the statement names in Parse ('P'), Bind ('B'), Describe ('D' S)
   * and Close ('C' S) this connection's prefix; the unnamed statement stays.
   */
  rename(message) {
    const type = String.fromCharCode(message[0]);
    let at;
    if (type === 'P') at = 5;
    else if (type === 'B') at = cstring(message, 5)?.end;
    else if ((type === 'D' || type === 'C') && message[5] === 0x53) at = 6;
    else return message;
    const name = at === undefined ? undefined : cstring(message, at);
    if (!name || name.text.length === 0) return message;
    const text = name.text.toString('utf8');
    if (type === 'P') this.statements.add(text);
    if (type === 'C') this.statements.delete(text);
    return replaceCString(message, at, name.end, this.prefix + text);
  }

  /** Close messages for the statements this connection left prepared, and a Sync. */
  leftovers() {
    const out = [];
    for (const name of this.statements) {
      const body = Buffer.concat([Buffer.from('S'), Buffer.from(this.prefix + name), Buffer.from([0])]);
      out.push(typed('C', body));
    }
    this.statements.clear();
    if (out.length > 0) out.push(SYNC);
    return out.length ? Buffer.concat(out) : undefined;
  }

  /** Takes `n` bytes off the front of the buffered input. */
  take(n) {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return Buffer.from(head);
  }

  /** The first `n` bytes buffered (n is at most 8). */
  peek(n) {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const all = Buffer.concat(this.chunks, this.length);
    this.chunks = [all];
    return all;
  }

  send(bytes) {
    if (!this.closed && bytes.length > 0) this.transport.send(Buffer.from(bytes));
  }

  feed(chunk) {
    if (this.closed) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
    while (!this.closed) {
      if (!this.started) {
        if (this.length < 8) return;
        const head = this.peek(8);
        const len = head.readInt32BE(0);
        const code = head.readInt32BE(4);
        if (len < 8 || len > MAX_STARTUP) return this.protocolError(`invalid startup packet length ${len}`);
        if (this.length < len) return;
        const packet = this.take(len);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          // No TLS or GSSAPI in process or on loopback: "N", go on in plaintext.
          this.send(Buffer.from('N'));
        } else if (code === CANCEL_REQUEST) {
          // PGlite has no other backend to signal; the protocol expects no answer.
          this.close();
        } else if (code >>> 16 === 3) {
          this.started = true;
          this.startup(packet);
        } else {
          return this.protocolError(`unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`);
        }
        continue;
      }
      if (this.length < 5) return;
      const head = this.peek(5);
      const len = head.readInt32BE(1);
      if (len < 4) return this.protocolError(`invalid message length ${len}`);
      if (this.length < 1 + len) return;
      const message = this.take(1 + len);
      if (message[0] === 0x58) {
        // Terminate: the client is done.
        this.close();
        return;
      }
      this.session.submit(this, this.rename(message), (out) => this.send(out));
    }
  }

  /**
   * Starts the session and then applies the settings the packet asked for
   * (PGlite ignores them): the client gets PGlite's greeting, the
   * ParameterStatus of its settings, then ReadyForQuery; a bad setting fails
   * the connection, as it would on a server.
   */
  startup(packet) {
    const settings = startupSettings(startupParams(packet));
    if (settings.length === 0) {
      this.session.submit(this, packet, (out) => this.send(out));
      return;
    }
    this.settings = settings.map(([name]) => name);
    this.session.submit(this, packet, (greeting) => {
      const messages = backendMessages(greeting);
      const ready = messages.at(-1)?.type === 'Z' ? messages.pop() : undefined;
      const sql = `SELECT ${settings.map(([n, v]) => `set_config(${literal(n)}, ${literal(v)}, false)`).join(', ')}`;
      this.session.submit(this, query(sql), (out) => {
        const answer = backendMessages(out);
        const failed = answer.find((m) => m.type === 'E');
        this.send(Buffer.concat(messages.map((m) => m.bytes)));
        if (failed) {
          const message = errorField(failed.bytes, 'M') ?? 'invalid startup setting';
          this.settings = [];
          this.send(errorResponse('22023', message));
          this.close();
          return;
        }
        this.send(Buffer.concat([...answer.filter((m) => m.type === 'S').map((m) => m.bytes), ...(ready ? [ready.bytes] : [])]));
      });
    });
  }

  protocolError(message) {
    this.send(errorResponse('08P01', message));
    this.close();
  }

  /** PGlite failed underneath: tell the client and hang up. */
  fail(err) {
    this.send(errorResponse('XX000', `the embedded database failed: ${err && err.message ? err.message : err}`));
    this.close();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.chunks = [];
    this.length = 0;
    this.session.detach(this);
    this.transport.end();
  }
}

/**
 * A stream.Duplex connected to `session`, for the wasm engine's JsSocket:
 * what is written to it goes to PGlite, what PGlite answers is readable.
 */
function openDuplex(session) {
  let conn;
  let ended = false;
  const duplex = new Duplex({
    read() {},
    write(chunk, _encoding, callback) {
      conn.feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      callback();
    },
    final(callback) {
      conn.close();
      callback();
    },
    destroy(err, callback) {
      conn.close();
      callback(err);
    },
  });
  conn = new Connection(session, {
    send: (bytes) => {
      if (!ended && !duplex.destroyed) duplex.push(bytes);
    },
    end: () => {
      if (ended || duplex.destroyed) return;
      ended = true;
      duplex.push(null);
    },
  });
  return duplex;
}

/**
 * Listens on `host:port` (port 0: any free one) and connects every client to
 * `session`. Resolves with `{ server, port, close() }`; close() stops
 * listening and hangs up on every client.
 */
function listen(session, { host = '127.0.0.1', port = 0 } = {}) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const conn = new Connection(session, {
      send: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
      end: () => socket.end(),
    });
    socket.on('data', (chunk) => conn.feed(chunk));
    const gone = () => {
      sockets.delete(socket);
      conn.close();
    };
    socket.on('end', gone);
    socket.on('close', gone);
    socket.on('error', gone);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve({
        server,
        host,
        port: server.address().port,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}

module.exports = { Session, openDuplex, listen };
